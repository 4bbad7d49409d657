"""The Streamlit dashboard over the store."""
