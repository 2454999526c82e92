"""Names of filing, disposition and scan states in Chinese and English: one table for the
console and the reports."""

from __future__ import annotations

STATE = {
    "filed": ("已备案", "filed"),
    "monitoring": ("监测中", "monitoring"),
    "warned": ("已预警", "warned"),
    "rectifying": ("整改中", "rectifying"),
    "suspended": ("已熔断", "suspended"),
    "reinstated": ("已恢复", "reinstated"),
    "revoked": ("已撤销", "revoked"),
    "pending": ("待审核", "pending review"),
    "approved": ("已批准", "approved"),
    "rejected": ("已驳回", "rejected"),
    "queued": ("排队中", "queued"),
    "running": ("检测中", "running"),
    "done": ("已完成", "done"),
    "failed": ("失败", "failed"),
}


def state_name(state: str | None, lang: str) -> str:
    if not state:
        return "-"
    return STATE.get(state, (state, state))[1 if lang == "en" else 0]
