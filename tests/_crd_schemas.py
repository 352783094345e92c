"""Structural checks for the custom resources the manifests use, which kubernetes-validate cannot check.

kubernetes-validate ships the schemas of Kubernetes' own kinds only: for a custom resource it prints "Couldn't
find schema" and passes. So each custom kind used here gets a JSON Schema restating the fields of its CRD
that matter (from the Prometheus Operator's and KServe's published CRDs), strict where we write them
(``additionalProperties: false``), so a misspelt or misplaced field fails like --strict does for core kinds.
The core objects embedded in them (a Container in a ClusterStorageContainer or an InferenceService) are
checked by kubernetes-validate itself, wrapped in a Pod: see :func:`embedded_pods`.
"""

from __future__ import annotations

from typing import Any

_META = {"type": "object", "required": ["name"],
         "properties": {"name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
                        "namespace": {"type": "string"}, "labels": {"type": "object"},
                        "annotations": {"type": "object"}}, "additionalProperties": False}
_LABEL_SELECTOR = {"type": "object", "properties": {
    "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
    "matchExpressions": {"type": "array"}}, "additionalProperties": False}
_DURATION = {"type": "string", "pattern": "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?"
                                          "(([0-9]+)s)?(([0-9]+)ms)?)$"}
_OBJECT = {"type": "object"}  # a core object, validated separately by kubernetes-validate


def _kind(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
            "properties": {"apiVersion": {"const": api_version}, "kind": {"const": kind}, "metadata": _META,
                           "spec": spec}, "additionalProperties": False}


SERVICE_MONITOR = _kind("monitoring.coreos.com/v1", "ServiceMonitor", {
    "type": "object", "required": ["selector", "endpoints"], "additionalProperties": False,
    "properties": {
        "selector": _LABEL_SELECTOR, "jobLabel": {"type": "string"},
        "namespaceSelector": {"type": "object", "properties": {"any": {"type": "boolean"},
                                                               "matchNames": {"type": "array"}},
                              "additionalProperties": False},
        "endpoints": {"type": "array", "minItems": 1, "items": {
            "type": "object", "additionalProperties": False,
            "properties": {"port": {"type": "string"}, "targetPort": {}, "path": {"type": "string"},
                           "scheme": {"enum": ["http", "https"]}, "interval": _DURATION,
                           "scrapeTimeout": _DURATION, "honorLabels": {"type": "boolean"},
                           "relabelings": {"type": "array"}, "metricRelabelings": {"type": "array"}}}}}})

CLUSTER_STORAGE_CONTAINER = _kind("serving.kserve.io/v1alpha1", "ClusterStorageContainer", {
    "type": "object", "required": ["container", "supportedUriFormats"], "additionalProperties": False,
    "properties": {
        "container": _OBJECT,
        "supportedUriFormats": {"type": "array", "minItems": 1, "items": {
            "type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 1,
            "properties": {"prefix": {"type": "string", "minLength": 1}, "regex": {"type": "string"}}}},
        "workloadType": {"enum": ["initContainer", "localModelDownloadJob"]}}})

INFERENCE_SERVICE = _kind("serving.kserve.io/v1beta1", "InferenceService", {
    "type": "object", "required": ["predictor"], "additionalProperties": False,
    "properties": {"predictor": {
        "type": "object", "additionalProperties": False,
        "properties": {"minReplicas": {"type": "integer", "minimum": 0}, "maxReplicas": {"type": "integer"},
                       "containers": {"type": "array", "minItems": 1, "items": _OBJECT},
                       "volumes": {"type": "array", "items": _OBJECT},
                       "automountServiceAccountToken": {"type": "boolean"},
                       "serviceAccountName": {"type": "string"}, "timeout": {"type": "integer"},
                       "scaleTarget": {"type": "integer"}, "scaleMetric": {"type": "string"}}}}})

SCHEMAS = {("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR,
           ("serving.kserve.io/v1alpha1", "ClusterStorageContainer"): CLUSTER_STORAGE_CONTAINER,
           ("serving.kserve.io/v1beta1", "InferenceService"): INFERENCE_SERVICE}


def is_custom(obj: dict[str, Any]) -> bool:
    """A kind outside Kubernetes' own API groups (its group has a dot and is not *.k8s.io)."""
    group = obj["apiVersion"].rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io")


def custom_violations(obj: dict[str, Any]) -> list[str]:
    """Every schema error of one custom resource; an unknown custom kind is itself a violation."""
    from jsonschema import Draft202012Validator

    schema = SCHEMAS.get((obj["apiVersion"], obj["kind"]))
    if schema is None:
        return [f"{obj['apiVersion']} {obj['kind']}: no schema in tests/_crd_schemas.py; add one"]
    return [f"{obj['kind']}/{obj['metadata'].get('name')}: {'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in Draft202012Validator(schema).iter_errors(obj)]


def embedded_pods(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The core Containers inside a custom resource, each as a Pod that kubernetes-validate can check."""
    spec = obj.get("spec") or {}
    containers, extra = [], {}
    if obj["kind"] == "ClusterStorageContainer":
        containers = [spec["container"]]
    elif obj["kind"] == "InferenceService":
        predictor = spec["predictor"]
        containers = predictor.get("containers", [])
        extra = {k: predictor[k] for k in ("volumes", "automountServiceAccountToken") if k in predictor}
    return [{"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": f"{obj['metadata']['name']}-{c.get('name', 'container')}"[:63]},
             "spec": {"containers": [c], **extra}} for c in containers]
