"""The SQLite + FTS5 + FAISS index backend."""
