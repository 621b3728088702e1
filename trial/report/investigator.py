"""The investigator report: one self-contained HTML file (and a PDF when Chromium is present).

:func:`render_investigator_report` formats a :class:`trial.report.data.ReportData`; it computes
no statistic itself. A blinded report shows pooled results only and states where arm-level
results are withheld.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from trial.models import device as device_model
from trial.models import multiplicity as multiplicity_model
from trial.models import safety as safety_model
from trial.report import figures
from trial.report.accountability import accountability_html
from trial.report.data import ReportData
from trial.report.estimand_tables import named_notes
from trial.report.estimands_section import estimands_html
from trial.report.html import banner, document, page_css
from trial.report.investigator_tables import investigator_outputs, subgroup_frame
from trial.report.labels import readable
from trial.report.model_tables import DEFAULT_ROLES, ModelRoles
from trial.report.pdf import Chromium, PdfPrint, start_pdf_print
from trial.report.tlf import tlf_html

REPORT_NAME = "investigator_report"
TITLE = "Investigator report"


def _title_block(data: ReportData) -> str:
    study, run = data.study, data.run
    rows = [
        ("Study", f"{study.study_id}: {study.title}"),
        ("Data cut", run.data_cut),
        ("Blinding", run.blinding_label),
        ("Data version (raw manifest)", run.data_version),
        ("Code version", run.code_version),
    ]
    cells = "".join(f"<tr><td><b>{escape(k)}</b></td><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<h1>{escape(study.study_id)} - {TITLE}</h1><table class="titleblock">{cells}</table>'


def _withheld(what: str) -> str:
    return (
        f'<div class="withheld">{escape(what)} by arm: withheld in this blinded report '
        "(pooled results only until unblinding).</div>"
    )


def _not_available(what: str, result: str) -> str:
    return (
        f'<div class="withheld">{escape(what)}: the {escape(result)} model result is not '
        "available.</div>"
    )


class _Outputs:
    """The report's numbered outputs rendered on demand (missing ones render as nothing)."""

    def __init__(self, data: ReportData) -> None:
        self.run = data.run
        self.tlfs = investigator_outputs(data)

    def __call__(self, *names: str) -> str:
        return "".join(tlf_html(self.tlfs[n], self.run) for n in names if n in self.tlfs)


def _primary(data: ReportData, out: _Outputs) -> str:
    parts = [out("responders")]
    if data.blinded:
        parts.append(_withheld("LS means, contrasts, multiplicity and p-values"))
    elif not data.primary_lsmeans.height:
        parts.append('<div class="withheld">The primary model result is not available.</div>')
    else:
        parts.append(out("lsmeans", "contrasts", "multiplicity"))
    return "".join(parts)


def _time_course(data: ReportData, out: _Outputs) -> str:
    study = data.study
    region = study.region_label(study.primary_region.code)
    svg = figures.time_course_svg(
        data.time_course, data.groups, study.primary_visit, region=region, ci=study.ci_label
    )
    return (
        '<figure id="time-course">'
        + svg
        + f"<figcaption>Figure 14.2.1 Geometric mean {region.lower()} sweat rate (mg/min, log "
        f"scale) with {study.ci_label} by visit, baseline to the end of follow-up (treatment "
        "stops before the last visits: relapse shows there). Full analysis set, observed "
        "values.</figcaption></figure>" + out("time_course", "plantar")
    )


def _subgroups_responders_sensitivity(data: ReportData, out: _Outputs) -> str:
    if data.blinded:
        return _withheld("Subgroup effects, responder odds ratios and sensitivity analyses")
    parts = []
    region = data.study.region_label(data.study.primary_region.code)
    if data.subgroups.height:
        parts.append(
            '<figure id="forest">'
            + figures.forest_svg(subgroup_frame(data), region=region, ci=data.study.ci_label)
            + f"<figcaption>Figure 14.2.2 Treatment effect at {data.study.primary_visit} by "
            f"subgroup: ratio of geometric mean {region.lower()} sweat rates with "
            f"{data.study.ci_label} (below 1 favours the treatment), n = subjects of the two "
            "arms in the level; interaction p: F test of arm x subgroup. An arrow head marks a "
            "CI cut at the axis limit. Full analysis "
            "set.</figcaption></figure>" + out("subgroups")
        )
    else:
        parts.append('<div class="withheld">Subgroup analysis result not available.</div>')
    if not data.responder_models.height:
        parts.append('<div class="withheld">Responder model result not available.</div>')
    parts.append(out("responder_models", "secondary", "sensitivity"))
    return "".join(parts)


def _safety(data: ReportData, out: _Outputs) -> str:
    if not data.ae_soc_pt.width:
        return _not_available("Adverse events", "safety")
    none = (
        ""
        if "ae_discontinuation" in out.tlfs
        else '<p class="note">No treatment-emergent adverse event led to withdrawal.</p>'
    )
    return (
        out("ae_soc_pt", "ae_severity", "ae_related", "ae_discontinuation") + none + out("serious")
    )


def _device(data: ReportData, out: _Outputs) -> str:
    if not data.device.width:
        return _not_available("Device adherence and delivered dose", "device") + out("induction")
    return out("device", "induction", "faults")


def model_label(name: str, roles: ModelRoles = DEFAULT_ROLES) -> str:
    """A model result's printed name: the report's label of its role (``mmrm_pp`` ->
    ``Sensitivity 2: primary MMRM on the per-protocol set``), else its name as words."""
    labels = {
        roles.primary: "Primary analysis: MMRM, full analysis set",
        roles.subgroups: "Subgroup analyses",
        roles.responders: "Responder analyses",
        **roles.sensitivity,
        **roles.secondary,
        multiplicity_model.NAME: "Multiplicity: fixed sequence",
        safety_model.NAME: "Adverse events",
        device_model.NAME: "Device adherence and dose",
    }
    return labels.get(name) or readable(name)


def _methods(data: ReportData) -> str:
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in data.methods)
    notes = ""
    if data.model_notes.height:
        notes = "<dt>Model notes</dt>" + "".join(
            f"<dd>{escape(model_label(m))}: {escape(n)}</dd>"
            for m, n in data.model_notes.iter_rows()
        )
    return f'<dl class="methods">{items}{notes}</dl>'


def _section_class(content: str) -> str:
    """``page``, plus ``wide`` when the section opens with a landscape output: its heading then
    prints on that landscape page instead of alone on a portrait one."""
    return "page wide" if content.startswith('<div class="tlf landscape') else "page"


def investigator_html(data: ReportData) -> str:
    """The report as one HTML string (inline CSS and SVG; no scripts, no external resources)."""
    sid = data.study.study_id
    top = banner(data.run, sid, TITLE)
    out = _Outputs(data)
    sections = [
        (
            "title",
            "",
            _title_block(data)
            + "<h2>Participant flow (CONSORT 2010)</h2>"
            + '<figure id="consort">'
            + figures.consort_svg(data.consort, data.groups)
            + "</figure>"
            + out("enrolment")
            + accountability_html(
                data.accountability, out("accountability"), out("data_issue_subjects")
            ),
        ),
        ("baseline", "Baseline characteristics", out("baseline")),
        ("primary", "Primary endpoint", _primary(data, out)),
        ("time-course", "Time course", _time_course(data, out)),
        (
            "subgroups",
            "Subgroups, responders, secondary and sensitivity analyses",
            _subgroups_responders_sensitivity(data, out),
        ),
        ("safety", "Adverse events", _safety(data, out)),
        ("device", "Device adherence and delivered dose", _device(data, out)),
    ]
    if data.estimands is not None:
        sections.append(
            (
                "estimands",
                "Estimands and intercurrent events",
                estimands_html(
                    data.estimands,
                    out("estimands", "ice_counts", "estimand_results", "estimand_check"),
                    named_notes(data),
                    blinded=data.blinded,
                    ci=data.study.ci_label,
                ),
            )
        )
    sections.append(("methods", "Methods and populations", _methods(data)))
    body = "\n".join(
        f'<section class="{_section_class(content)}" id="{sid_}">{top}'
        + (f"<h2>{escape(h)}</h2>" if h else "")
        + content
        + "</section>"
        for sid_, h, content in sections
    )
    return document(f"{sid} {TITLE} ({data.run.blinding_label})", page_css(data.run, sid), body)


def write_investigator_html(
    data: ReportData, out_dir: Path, *, pdf: bool = False, chromium: Chromium | None = None
) -> tuple[Path, PdfPrint | None]:
    """Write ``out_dir/investigator_report.html``; with ``pdf=True`` (Chromium installed) also
    start printing ``investigator_report.pdf`` when the HTML changed or no PDF is there (with
    ``chromium`` if one was started ahead, else a Chromium of the print's own), and return the
    print under way for the caller to wait on (None when nothing is printed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{REPORT_NAME}.html"
    html = investigator_html(data)
    printed = path.with_suffix(".pdf")
    unchanged = printed.is_file() and path.is_file() and path.read_text("utf-8") == html
    path.write_text(html, encoding="utf-8")
    if not pdf or unchanged:
        return path, None
    return path, start_pdf_print(path, printed, chromium=chromium)


def render_investigator_report(data: ReportData, out_dir: Path, *, pdf: bool = False) -> Path:
    """:func:`write_investigator_html` and wait for the PDF; returns the HTML path. A PDF is
    printed aside and renamed, so a PDF present is a whole print."""
    path, printing = write_investigator_html(data, out_dir, pdf=pdf)
    if printing is not None:
        with printing:
            printing.wait()
    return path
