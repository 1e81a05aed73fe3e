"""The answer engine: retrieval, prompts, generation through the stack, citations."""
