"""Human evaluation: a blind, multi-annotator Streamlit app over generation logs of one task.

`store` (the durable SQLite vote store), `study` (items from run logs, tokens, assignments),
`assign` (balanced, shuffled, attention-checked assignment), `app` (the Streamlit pages),
`results` (rankings and agreement), `cli` (`evalkit human serve|export|report`).
"""
