"""Lead qualification: the offline rules engine (offline.py) and the LLM engine (llm.py)."""
