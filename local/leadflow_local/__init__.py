"""The local stack and the leadflow CLI. Never imported by the layer."""
