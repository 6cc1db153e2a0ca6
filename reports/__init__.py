"""Reports: run logs → leaderboards with CIs, a static HTML report and a Streamlit app (read logs only)."""
