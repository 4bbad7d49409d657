"""The Streamlit dashboard over the store: `tradeoff dashboard`."""

from tradeoff.dashboard.launch import app_path, streamlit_command

__all__ = ["app_path", "streamlit_command"]
