"""The Hugging Face cache layout and its only owner: scanning (`scan`), the layout names (`layout`), the one
snapshot writer (`writer`), file locks (`locks`), sha256 and content commit ids (`hashing`), verified downloads
into the layout (`fetch`). Internal: see docs/design.md."""
