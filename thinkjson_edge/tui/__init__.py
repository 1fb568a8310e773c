"""The Textual interface: review an extraction beside its document, and watch batches.

``thinkjson-edge tui`` starts ``ReviewApp`` (``app.py``). The logic a screen shows lives in
plain modules next to it (``review.py``, ``batch_folder.py``), so it is tested without a
terminal; the screens and widgets only draw it and pass the keys on.
"""
