"""The index: collections of chunks with their vectors, behind one interface (`ChunkIndex`), and the
embedding model that makes the vectors."""
