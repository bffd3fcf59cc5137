"""The small HTML pages people see: signup, preferences, confirmation and unsubscribe.

Plain server-rendered HTML, accessible without JavaScript: every control has a label, groups are
fieldsets with legends, errors are listed in an alert summary and linked to their field.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from html import escape
from typing import Any

from fastapi.responses import HTMLResponse

from subscribers import consent
from subscribers.store import EMAIL_PURPOSE, HEALTH_PURPOSE
from subscribers.symptoms import GROUPS, SYMPTOMS
from templates import warning_signs

# box-sizing and overflow-wrap keep every page inside a 390 px phone: full-width inputs with
# padding, and long words (an address, a URL), would otherwise push the page sideways.
STYLE = """*,*::before,*::after{box-sizing:border-box}body{overflow-wrap:anywhere;font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;
line-height:1.6;color:#1d2a26}button{font-size:1.1rem;padding:.6rem 1.2rem;border-radius:6px;
border:0;background:#17453b;color:#fff;cursor:pointer}button.secondary{background:#6b3a2a}
:focus{outline:3px solid #f2b705;outline-offset:2px}fieldset{border:1px solid #9bb0a8;
border-radius:6px;margin:1rem 0;padding:.5rem 1rem}legend{font-weight:600}
label{display:block;margin:.4rem 0}.hint{color:#4a5a55;font-size:.9rem;display:block}
input[type=email],input[type=text]{font-size:1rem;padding:.4rem;width:100%;max-width:24rem}
.urgent{border:3px solid #b00020;background:#fdecee;padding:.75rem 1rem;border-radius:6px}
.errors{border:3px solid #b00020;padding:.5rem 1rem;border-radius:6px}[hidden]{display:none}"""

PAUSE_WEEKS = (2, 4, 8)
# The series is for adults (NICE NG59 covers over-16s); said on the signup page and the
# preference centre, and in the confirmation email.
ADULT_SCOPE = (
    "These emails are general education for adults (16 and over). They are not for children, "
    "and they do not replace a check-up."
)


def urgent_note(lines: Mapping[str, str]) -> str:
    """Shown beside the red-flag boxes: the signs and what to do, from the warning-signs table
    in the clinic's own numbers (HTML)."""
    return (
        "<p><strong>Please do not wait for an email.</strong> Some of these signs need care now, "
        "and some the same day.</p>" + warning_signs.html(lines)
    )


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)}</title>
<meta name="robots" content="noindex"><style>{STYLE}</style>
</head><body><main><h1>{escape(title)}</h1>{body}</main></body></html>"""
    return HTMLResponse(
        html,
        status_code=status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def one_button(question: str, action: str, label: str) -> str:
    """A question (HTML) and one button that POSTs to ``action``: the page a link opens never
    acts by itself, because mail scanners fetch links."""
    return (
        f"<p>{question}</p>"
        f'<form method="post" action="{escape(action)}">'
        f'<button type="submit">{label}</button></form>'
    )


def _error_summary(errors: Mapping[str, str]) -> str:
    if not errors:
        return ""
    items = "".join(
        f'<li><a href="#{escape(name)}">{escape(msg)}</a></li>' for name, msg in errors.items()
    )
    return (
        '<div class="errors" role="alert" tabindex="-1" id="errors">'
        f"<h2>Please check the form</h2><ul>{items}</ul></div>"
    )


def _error(errors: Mapping[str, str], name: str) -> tuple[str, str]:
    """(attributes for the control, the message element) for one field."""
    if name not in errors:
        return "", ""
    return (
        f' aria-invalid="true" aria-describedby="{name}-error"',
        f'<span class="hint" id="{name}-error"><strong>Error:</strong> {escape(errors[name])}</span>',
    )


def symptom_fieldsets(
    chosen: Collection[str],
    *,
    include_red_flags: bool,
    errors: Mapping[str, str] | None = None,
    lines: Mapping[str, str] = warning_signs.UK_LINES,
) -> str:
    parts = []
    for group in GROUPS:
        if group.id == "red_flags" and not include_red_flags:
            continue
        boxes = []
        for s in SYMPTOMS:
            if s.group != group.id:
                continue
            checked = " checked" if s.code in chosen else ""
            cls = ' class="red-flag"' if group.id == "red_flags" else ""
            boxes.append(
                f'<label><input type="checkbox" name="symptoms" value="{s.code}"'
                f' id="symptom-{s.code}"{cls}{checked} aria-describedby="symptom-{s.code}-hint"> '
                f'{escape(s.label)} <span class="hint" id="symptom-{s.code}-hint">'
                f"{escape(s.help)}</span></label>"
            )
        extra = ""
        if group.id == "red_flags":
            note = urgent_note(lines)
            extra = (
                f'<div class="urgent" id="urgent" role="alert" hidden>{note}</div>'
                f'<noscript><div class="urgent"><p>If you tick any of these:</p>{note}</div>'
                "</noscript>"
            )
        parts.append(
            f'<fieldset id="group-{group.id}"><legend>{escape(group.question)}</legend>'
            f"{''.join(boxes)}{extra}</fieldset>"
        )
    anchor = '<span id="symptoms"></span>'
    _, message = _error(errors or {}, "symptoms")
    return anchor + message + "".join(parts)


# Served as /assets/signup.js (subscribers.web): no inline script, so the pages' CSP can
# forbid inline script altogether.
SIGNUP_JS = """(function(){var u=document.getElementById('urgent');var b=document.querySelectorAll('input.red-flag');
function s(){var on=false;for(var i=0;i<b.length;i++){if(b[i].checked){on=true;}}if(u){u.hidden=!on;}}
for(var i=0;i<b.length;i++){b[i].addEventListener('change',s);}s();
var tz=document.getElementById('timezone');if(tz&&!tz.value&&window.Intl){try{
tz.value=Intl.DateTimeFormat().resolvedOptions().timeZone||'';}catch(e){}}})();
"""
RED_FLAG_SCRIPT = '<script src="/assets/signup.js" defer></script>'


def signup_form(
    clinic_name: str,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    lines: Mapping[str, str] = warning_signs.UK_LINES,
) -> str:
    values = values or {}
    errors = errors or {}

    def text(name: str) -> str:
        return escape(str(values.get(name) or ""))

    email_attrs, email_err = _error(errors, "email")
    tz_attrs, tz_err = _error(errors, "timezone")
    name_attrs, name_err = _error(errors, "first_name")
    c_attrs, c_err = _error(errors, "consent")
    h_attrs, h_err = _error(errors, "health_consent")
    c_checked = " checked" if values.get("consent") is True else ""
    h_checked = " checked" if values.get("health_consent") is True else ""
    return (
        _error_summary(errors)
        + f"<p>One short email a week from {escape(clinic_name)} on back and neck pain, "
        "what helps, and how rehab works. Tell us a little about your pain and we will pick the "
        f"emails that fit.</p><p>{ADULT_SCOPE}</p>"
        '<form method="post" action="/signup" novalidate>'
        f'<label for="email">Email address</label><input type="email" id="email" name="email"'
        f' autocomplete="email" required value="{text("email")}"{email_attrs}>{email_err}'
        f'<label for="first_name">First name <span class="hint">(optional, so we can greet you)</span>'
        f'</label><input type="text" id="first_name" name="first_name" autocomplete="given-name"'
        f' maxlength="100" value="{text("first_name")}"{name_attrs}>{name_err}'
        f'<label for="timezone">Your time zone <span class="hint">(for example Europe/London; '
        "we only email at sensible hours)</span></label>"
        f'<input type="text" id="timezone" name="timezone" autocomplete="off"'
        f' value="{text("timezone")}"{tz_attrs}>{tz_err}'
        + symptom_fieldsets(
            values.get("symptoms") or (), include_red_flags=True, errors=errors, lines=lines
        )
        + "<fieldset><legend>Your consent</legend>"
        f'<label><input type="checkbox" id="consent" name="consent" value="yes"{c_checked}{c_attrs}> '
        f"{escape(consent.WORDING[EMAIL_PURPOSE])}</label>{c_err}"
        f'<label><input type="checkbox" id="health_consent" name="health_consent" value="yes"'
        f"{h_checked}{h_attrs}> {escape(consent.WORDING[HEALTH_PURPOSE])}</label>{h_err}"
        '<span class="hint">The second box is only needed if you tick any symptoms.</span>'
        "</fieldset>"
        '<button type="submit">Sign up</button></form>' + RED_FLAG_SCRIPT
    )


def preferences_form(
    token: str,
    *,
    clinic_name: str,
    symptoms: Collection[str],
    paused_until: datetime | None,
    now: datetime,
    message: str = "",
    series: Collection[tuple[str, str]] = (),
) -> str:
    t = escape(token)
    paused = paused_until is not None and paused_until > now
    options = []
    if paused:
        assert paused_until is not None
        options.append(
            f'<label><input type="radio" name="pause" value="keep" checked> Keep my pause '
            f"(until {paused_until:%d %B %Y})</label>"
            '<label><input type="radio" name="pause" value="0"> Resume my emails now</label>'
        )
    else:
        options.append(
            '<label><input type="radio" name="pause" value="0" checked> Keep my emails coming</label>'
        )
    for weeks in PAUSE_WEEKS:
        options.append(
            f'<label><input type="radio" name="pause" value="{weeks}"> Pause for {weeks} weeks</label>'
        )
    status = f'<p role="status">{escape(message)}</p>' if message else ""
    return (
        status
        + f"<p>Choose what {escape(clinic_name)} sends you. Tick what describes your pain now; "
        f"we use it only to pick your emails.</p><p>{ADULT_SCOPE}</p>"
        f'<form method="post" action="/preferences/{t}">'
        + symptom_fieldsets(symptoms, include_red_flags=False)
        + f"<fieldset><legend>Take a break</legend>{''.join(options)}</fieldset>"
        "<fieldset><legend>Has your pain come back?</legend>"
        '<label><input type="checkbox" name="new_episode" value="yes"> This is a new '
        "episode: start the weekly emails again from week 1 (tick what describes it above)"
        "</label></fieldset>"
        '<button type="submit" name="action" value="save">Save my choices</button></form>'
        + "".join(
            f'<form method="post" action="/preferences/{t}"><h2>{escape(name)}</h2>'
            f'<button type="submit" class="secondary" name="action" value="leave-series:{escape(cid)}">'
            f"Leave this series</button></form>"
            for cid, name in series
        )
        + f'<form method="post" action="/preferences/{t}"><h2>Leave all emails</h2>'
        "<p>Stop every email from us. You can sign up again any time.</p>"
        '<button type="submit" class="secondary" name="action" value="leave">'
        "Unsubscribe from everything</button></form>"
    )
