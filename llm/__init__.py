"""The teacher LLM client: any OpenAI-compatible endpoint, its response cache, reply parsing and prompt templates."""
