"""Newsletters: one-off broadcasts composed, targeted, scheduled and watched from the console."""

from __future__ import annotations

from fastapi import APIRouter

from console.ports import ConsolePorts


def router(ports: ConsolePorts) -> APIRouter:
    return APIRouter()
