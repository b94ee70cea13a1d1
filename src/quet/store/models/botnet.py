"""Botnet IPs from sinkhole and botnet feeds, attributed to organisations (issue 6)."""

from __future__ import annotations
