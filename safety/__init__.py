"""The safety shields: checks on the question (input), the retrieved passages (context, at ingest)
and the answer (output), a policy that decides what each finding does, and an audit log. The one
entry point is `guard.Shields`; `stack_provider/` serves the same shields through Llama Stack."""
