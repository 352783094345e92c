"""smart-model-manager."""
