"""The Streamlit entry point (`streamlit run dashboard/app.py`; `tradeoff dashboard` does this).

The store comes from `$TRADEOFF_DB`. Each page is a module under `views/`, run as a script.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

VIEWS = Path(__file__).parent / "views"
PAGES = (
    ("tradeoffs.py", "Tradeoffs", ":material/scatter_plot:"),
    ("models_tasks.py", "Models x tasks", ":material/grid_on:"),
    ("policy_detail.py", "Policy detail", ":material/alt_route:"),
    ("loop.py", "Loop", ":material/autorenew:"),
    ("traffic.py", "Traffic", ":material/monitoring:"),
    ("requests.py", "Requests", ":material/list_alt:"),
    ("review.py", "Review", ":material/rate_review:"),
    ("eval_browser.py", "Eval browser", ":material/fact_check:"),
)


def main() -> None:
    st.set_page_config(page_title="tradeoff", page_icon=":material/balance:", layout="wide")
    pages = [
        st.Page(VIEWS / name, title=title, icon=icon, default=(i == 0))
        for i, (name, title, icon) in enumerate(PAGES)
    ]
    st.navigation(pages).run()


main()
