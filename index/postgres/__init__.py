"""The PostgreSQL + pgvector index backend."""
