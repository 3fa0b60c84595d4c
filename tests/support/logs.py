"""Edge's log records, collected whatever ``propagate`` says (setup_logging turns it off)."""

from __future__ import annotations

import logging


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def lines(self, level=logging.DEBUG, contains=""):
        return [r.getMessage() for r in self.records if r.levelno >= level and contains in r.getMessage()]
