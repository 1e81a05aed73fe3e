"""The Streamlit web app; run with `docstack up` or `streamlit run ui/app.py`."""
