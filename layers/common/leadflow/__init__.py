"""leadflow: the domain shared by all functions (the common layer)."""
