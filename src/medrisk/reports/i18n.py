"""Report labels, Chinese first with English available."""

from __future__ import annotations

LABELS: dict[str, dict[str, str]] = {
    "app": {"zh": "应用", "en": "App"},
    "file": {"zh": "文件", "en": "File"},
    "version": {"zh": "版本", "en": "Version"},
    "sdk": {"zh": "最低/目标 SDK", "en": "Min/target SDK"},
    "score": {"zh": "安全评分", "en": "Score"},
    "grade": {"zh": "等级", "en": "Grade"},
    "capped": {"zh": "因存在{sev}级问题封顶", "en": "capped by an open {sev} finding"},
    "breakdown": {"zh": "分类扣分", "en": "Deductions by category"},
    "findings": {"zh": "发现的问题", "en": "Findings"},
    "evidence": {"zh": "证据", "en": "Evidence"},
    "remediation": {"zh": "修复建议", "en": "Remediation"},
    "suppressed": {"zh": "已抑制", "en": "suppressed"},
    "reason": {"zh": "原因", "en": "reason"},
    "cost": {"zh": "扣分", "en": "cost"},
    "facts": {"zh": "基本信息", "en": "Facts"},
    "permissions": {"zh": "权限", "en": "Permissions"},
    "dangerous": {"zh": "危险权限", "en": "dangerous"},
    "exported": {"zh": "导出组件", "en": "Exported components"},
    "signing": {"zh": "签名", "en": "Signing"},
    "certificate": {"zh": "证书", "en": "Certificate"},
    "native": {"zh": "原生库", "en": "Native libraries"},
    "dex": {"zh": "DEX 文件", "en": "DEX files"},
    "classes": {"zh": "类", "en": "classes"},
    "urls": {"zh": "URL", "en": "URLs"},
    "debuggable": {"zh": "可调试", "en": "Debuggable"},
    "allow_backup": {"zh": "允许备份", "en": "Allow backup"},
    "none": {"zh": "无", "en": "none"},
    "error": {"zh": "扫描失败", "en": "scan failed"},
    "rules_version": {"zh": "规则库版本", "en": "Rule library"},
    "model_version": {"zh": "风险模型版本", "en": "Risk model"},
    "total": {"zh": "合计", "en": "Total"},
    "report_title": {"zh": "移动医疗应用安全检测报告", "en": "Mobile medical app security report"},
    "in_library": {"zh": "仅见于第三方库代码", "en": "only in third-party library code"},
    "yes": {"zh": "是", "en": "yes"},
    "no": {"zh": "否", "en": "no"},
}

SEVERITY = {
    "critical": {"zh": "严重", "en": "critical"},
    "high": {"zh": "高危", "en": "high"},
    "medium": {"zh": "中危", "en": "medium"},
    "low": {"zh": "低危", "en": "low"},
    "info": {"zh": "提示", "en": "info"},
    "secure": {"zh": "安全措施", "en": "secure"},
}


def t(key: str, lang: str, **kw: str) -> str:
    text = LABELS[key]["en" if lang == "en" else "zh"]
    return text.format(**kw) if kw else text


def sev(name: str, lang: str) -> str:
    return SEVERITY.get(name, {"zh": name, "en": name})["en" if lang == "en" else "zh"]


def pick(text: dict[str, str] | None, lang: str) -> str:
    if not text:
        return ""
    return text.get("en" if lang == "en" else "zh") or text.get("en") or ""
