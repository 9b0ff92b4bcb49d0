"""Data: import completions (the CLI's validation and messages) and run the language-ID surrogate.

After either, the population part of the analysis frame is read again in the background, so
the dashboard's next visit reads only the labels.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from annotator.errors import USER_ERRORS
from annotator.ingest.completions import import_file
from annotator.ingest.langid import run_language_id
from annotator.ingest.reading import FORMATS
from db.vocabulary import RESEARCH_ROLES
from pages._common import engine, escape_markdown, require_role, show_error
from pages._study import warm_population

require_role(RESEARCH_ROLES)
db = engine()

st.title("Data")

st.subheader("Import completions")
st.caption(
    "CSV, JSON Lines or Parquet with the columns id, model, benchmark, query_language, image, completion "
    "(optional: prompt, gold_answer, image_path, image_url, llm, vision_encoder, train_language, and "
    "surrogate columns). A file is imported whole or not at all; rows with a known id are updated."
)
upload = st.file_uploader("Completions file", type=["csv", "jsonl", "ndjson", "json", "parquet"], key="import_file")
fmt = st.selectbox("Format", ["from the file name", *FORMATS], key="import_format")
if st.button("Import", key="import_run", type="primary", disabled=upload is None) and upload is not None:
    with tempfile.TemporaryDirectory(prefix="ifl-upload-") as folder:
        path = Path(folder) / Path(upload.name).name
        path.write_bytes(upload.getvalue())
        try:
            with st.spinner("Importing…"):
                report = import_file(db, path, None if fmt == "from the file name" else fmt, display_name=upload.name)
        except USER_ERRORS as error:
            show_error(error)
        else:
            st.success(escape_markdown(report))
            warm_population()  # the dashboard's next visit then finds the new population read

st.subheader("Language ID (the surrogate)")
st.caption(
    "Predicts the answer language of every completion with fastText and stores it as the surrogate. "
    "Run it after each import. It writes all predictions at the end in one short transaction."
)
model = st.text_input(
    "Model file on the server (optional)",
    key="lid_model",
    placeholder="default: lid.176, shipped with the app; or a GlotLID .bin",
)
if st.button("Run language ID", key="lid_run", type="primary"):
    bar = st.progress(0.0, text="Starting…")

    def advance(done: int, total: int) -> None:
        bar.progress(done / total if total else 1.0, text=f"{done:,} of {total:,} completions")

    try:
        lid_report = run_language_id(db, model_path=model or None, progress=advance)
    except USER_ERRORS as error:
        show_error(error)
    else:
        bar.progress(1.0, text="Done.")
        st.code(lid_report.summary(), language=None)
        warm_population()
