"""Status and settings: what runs, which models the stack serves, index sizes, chat options, and
for admins the request audit."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from docstack import MODES, DocStack, DocstackError, Status
from docstack.ui.common import AUTO_MODEL, current_user, user_docstack


def available_models() -> tuple[list[dict], str | None]:
    """The profile's catalogue models, one row each with whether it can answer now or why not."""
    try:
        statuses = user_docstack().models()
    except DocstackError as exc:
        return [], str(exc)
    return [{"model": s.spec.id, "role": s.spec.role, "size": f"{s.spec.parameters_b:g}B",
             "window": s.spec.context, "vision": s.spec.vision, "usable": s.usable, "reason": s.reason}
            for s in statuses], None


def services(info: Status) -> None:
    st.subheader("Services")
    st.write(f"Profile **{info.profile}** · default model `{info.default_model}` · data in `{info.home}`")
    rows = []
    for name, s in info.services.items():
        state = "healthy" if s.healthy else ("starting or failing" if s.running else "not running")
        rows.append({"service": name, "state": state, "url": s.url, "pid": s.pid, "log": s.log})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def indexes(info: Status) -> None:
    st.subheader("Collections")
    ds = user_docstack()
    rows = [{"collection": name, **stats.to_json(), "on disk (MB)": round(ds.index_bytes(name) / 2**20, 2)}
            for name, stats in info.collections.items()]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    else:
        st.info("No collections yet.")


def chat_options(models: list[str]) -> None:
    st.subheader("Chat options")
    ds = user_docstack()
    st.session_state.setdefault("opt_k", ds.settings.ask_k)
    st.session_state.setdefault("opt_mode", ds.settings.search_mode)
    st.session_state.setdefault("opt_model", AUTO_MODEL)
    st.slider("Passages the model reads (k)", 1, 10, key="opt_k",
              help="More passages: more context, slower answers (about 2 s each on the embedded model).")
    st.selectbox("Search mode", MODES, key="opt_mode")
    choices = [AUTO_MODEL, *models]
    if st.session_state["opt_model"] not in choices:
        st.session_state["opt_model"] = AUTO_MODEL
    st.selectbox("Model", choices, key="opt_model")


def safety(info: Status) -> None:
    st.subheader("Safety policy")
    shields = info.safety
    if not shields.enabled:
        st.warning("Safety shields are off (DOCSTACK_SAFETY=false).")
        return
    st.write(f"Policy `{shields.policy}` (version {shields.policy_version}); audit log `{shields.audit_log}`.")
    st.write(f"Harmful content: {shields.harmful_content}.")


AUDIT_ROWS = 500
ALL = "(all)"
AUDIT_FILTERS = ("user", "action", "collection")


def audit(ds: DocStack) -> None:
    """The newest request audit lines, filtered by user, action and collection; admins only."""
    if not ds.may_read_audit():
        return
    st.subheader("Audit")
    recent = ds.audit(AUDIT_ROWS)
    if not recent:
        st.info("No requests audited yet." if ds.settings.identity else
                "Identity is off (DOCSTACK_OIDC_ISSUER is unset): requests are audited only for signed-in users.")
        return
    picked = {}
    for column, field in zip(st.columns(len(AUDIT_FILTERS)), AUDIT_FILTERS, strict=True):
        values = sorted({str(row[field]) for row in recent if row.get(field) is not None})
        choice = column.selectbox(field.capitalize(), [ALL, *values], key=f"audit_{field}")
        picked[field] = None if choice == ALL else choice
    rows = ds.audit(AUDIT_ROWS, **picked) if any(picked.values()) else recent
    st.dataframe(pd.DataFrame([audit_row(row) for row in rows]), hide_index=True, width="stretch")
    st.caption(f"{len(rows)} newest of the lines kept in `{ds.settings.log_dir / 'audit.jsonl'}` "
               "(questions are kept as a SHA-256, never as text).")


def audit_row(line: dict) -> dict:
    safety = line.get("safety") or {}
    decision = " ".join(str(v) for v in (safety.get("decision"), safety.get("category")) if v)
    return {"time": line.get("time"), "user": line.get("user"), "teams": ", ".join(line.get("teams") or []),
            "action": line.get("action"), "collection": line.get("collection"),
            "question": (line.get("question_sha256") or "")[:12],
            "cited": ", ".join(map(str, line.get("chunk_ids") or [])),
            "model": line.get("model"), "seconds": line.get("seconds"), "safety": decision, "error": line.get("error")}


def main() -> None:
    st.title("Status")
    info = user_docstack().status()
    if current_user().is_admin:  # process ids, log paths and the data folder are the operator's business
        services(info)
    rows, problem = available_models()
    st.subheader("Models")
    if problem:
        st.warning(f"No models listed: {problem}")
    elif rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    else:
        st.info("The stack serves no models.")
    indexes(info)
    chat_options([row["model"] for row in rows if row["usable"] and row["role"] == "answer"])
    safety(info)
    audit(user_docstack())


main()
