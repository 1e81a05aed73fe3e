"""The evaluation harness: retrieval and answer quality on a dataset (`docstack eval`)."""
