"""Long-document analysis: what top-k retrieval cannot answer. The outline, every mention of a
term, summaries, extraction and comparison of whole documents.

Structure comes from the document (docstack.ingest.structure, computed once at ingest); the
model is spent only where it must write, on selected text, in checkpointed jobs (`jobs`) whose
units are cached by document hash, operation, unit, model and prompt version, so a rerun of an
unchanged document makes no model call and an interrupted one resumes."""
