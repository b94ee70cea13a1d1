"""Official reports: the campaign form per organisation and its workflow (issue 7)."""

from __future__ import annotations
