"""The owner's panel: server-rendered pages in Russian behind ``/panel/…`` (the panel function)."""
