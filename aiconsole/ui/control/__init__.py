"""Streamlit pages and panels of the Pipeline Control area."""
