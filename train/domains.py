"""The fields of synthetic documents, by domain: what a schema may ask for and how values look.

A domain is a list of :class:`Field` s. A generated schema takes a subset of a
domain's fields (always the required ones), so one domain yields flat schemas,
nested objects, arrays of objects, enums, optional fields, numbers and dates.
Every value comes from the ``random.Random`` passed in, so a seed fixes everything.
Values never contain ``<``: reasoning traces quote them, and the runtime's reasoning
block cannot hold that character.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Make = Callable[[random.Random], Any]

STRING, INTEGER, NUMBER, DATE, ENUM, BOOLEAN, OBJECT, ARRAY = (
    "string",
    "integer",
    "number",
    "date",
    "enum",
    "boolean",
    "object",
    "array",
)


@dataclass(frozen=True)
class Field:
    """One property of a schema: its key, the label documents print, and its values."""

    name: str
    label: str
    kind: str
    make: Make | None = None  # scalar kinds
    choices: tuple[str, ...] = ()  # ENUM
    children: tuple[Field, ...] = ()  # OBJECT, and the items of ARRAY
    required: bool = True
    max_items: int = 3  # ARRAY
    # Other (key, label) pairs a schema and its documents may use for the same value:
    # sites name one field many ways, and a model should read the label, not the key alone.
    aliases: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Domain:
    name: str
    title: str  # how a document of this kind is headed
    fields: tuple[Field, ...]
    distractors: tuple[Callable[[random.Random], str], ...] = field(default=())


# --- value makers ----------------------------------------------------------------

_COMPANIES = (
    "Northwind Pharma",
    "Helix Biologics",
    "Alpine Labs AG",
    "Corvus Materials",
    "Blue Harbor Foods",
    "Meridian Devices",
    "Kestrel Chemicals",
    "Orchid Therapeutics",
    "Granite Logistics",
    "Sable Analytics",
)
_PEOPLE = (
    "Maria Jensen",
    "Tom Okafor",
    "Lena Fischer",
    "Raj Patel",
    "Sofia Rossi",
    "Kenji Watanabe",
    "Amal Haddad",
    "Peter Novak",
    "Chloe Martin",
    "Diego Alvarez",
)
_PRODUCTS = (
    "Amoxicillin 500 mg capsules",
    "Saline solution 0.9%",
    "Ibuprofen 200 mg tablets",
    "Insulin glargine 100 U/mL",
    "Vitamin D3 drops",
    "Paracetamol oral suspension",
    "Heparin sodium injection",
    "Omeprazole 20 mg capsules",
)
_MATERIALS = (
    "Microcrystalline cellulose",
    "Magnesium stearate",
    "Lactose monohydrate",
    "Purified water",
    "Povidone K30",
    "Croscarmellose sodium",
    "Talc",
)
_CITIES = ("Basel", "Dublin", "Leiden", "Boston", "Lyon", "Turin", "Graz", "Aarhus", "Porto")
_STREETS = ("Main Street", "Harbour Road", "Mill Lane", "Station Square", "Park Avenue")
_SERVICES = (
    "Cleanroom validation",
    "Calibration of balances",
    "Stability testing",
    "Freight, cold chain",
    "Software licence",
    "Consulting hours",
    "Filter cartridges",
    "Lab glassware",
)
_DEVIATION_NOTES = (
    "printer ribbon replaced during the run, labels checked",
    "filter integrity test repeated, passed on retest",
    "cold room temperature excursion of 20 minutes, within validated range",
    "in-process sample taken 15 minutes late",
    "cap torque out of range on 40 units, units rejected",
    "missing operator signature, corrected the same day",
    "stopper bowl refilled without line clearance",
)
_TESTS = (
    ("Assay", "%"),
    ("Water content", "%"),
    ("pH", ""),
    ("Dissolution", "%"),
    ("Total impurities", "%"),
    ("Particle size D90", "um"),
    ("Endotoxin", "EU/mL"),
)


def _pick(options: tuple[str, ...]) -> Make:
    return lambda rng: rng.choice(options)


def _code(prefix: str, digits: int = 5) -> Make:
    return lambda rng: f"{prefix}-{rng.randrange(10 ** (digits - 1), 10**digits)}"


def _date(rng: random.Random) -> str:
    day = dt.date(2022, 1, 1) + dt.timedelta(days=rng.randrange(0, 1000))
    return day.isoformat()


def _amount(low: float, high: float) -> Make:
    return lambda rng: round(rng.uniform(low, high), 2)


def _count(low: int, high: int) -> Make:
    return lambda rng: rng.randint(low, high)


def _address(rng: random.Random) -> str:
    return f"{rng.randint(1, 120)} {rng.choice(_STREETS)}, {rng.choice(_CITIES)}"


def _email(rng: random.Random) -> str:
    first, last = rng.choice(_PEOPLE).lower().split()
    return f"{first}.{last}@{rng.choice(('example.com', 'example.org', 'example.net'))}"


def _test_name(rng: random.Random) -> str:
    return rng.choice(_TESTS)[0]


def _flag(share_true: float) -> Make:
    return lambda rng: rng.random() < share_true


def _limit(rng: random.Random) -> str:
    low = rng.randint(90, 98)
    return f"{low}.0 - {low + rng.randint(2, 10)}.0"


# --- distractors: values a document mentions that no field asks for ---------------


def _printed_on(rng: random.Random) -> str:
    return f"Printed on {_date(rng)} by the document system."


def _previous_batch(rng: random.Random) -> str:
    return f"Previous batch on this line: {_code('B')(rng)}."


def _last_month_total(rng: random.Random) -> str:
    return f"For comparison, last month's total was {_amount(100, 9000)(rng):,.2f}."


def _page(rng: random.Random) -> str:
    return f"Page {rng.randint(1, 3)} of {rng.randint(3, 5)}"


def _old_reference(rng: random.Random) -> str:
    return f"Supersedes reference {_code('REF', 4)(rng)}."


def _process_check(rng: random.Random) -> str:
    test, unit = rng.choice(_TESTS)
    return f"In-process check, {test.lower()}: {_amount(1, 99)(rng)} {unit} (within limits)."


# --- domains ---------------------------------------------------------------------

_MATERIAL = (
    Field("material", "Material", STRING, _pick(_MATERIALS)),
    Field("lot", "Lot", STRING, _code("L", 6)),
    Field("quantity_kg", "Quantity (kg)", NUMBER, _amount(0.5, 250)),
)
_LINE_ITEM = (
    Field("description", "Description", STRING, _pick(_SERVICES)),
    Field("quantity", "Qty", INTEGER, _count(1, 40)),
    Field("unit_price", "Unit price", NUMBER, _amount(5, 900)),
)
_TEST_RESULT = (
    Field("test", "Test", STRING, _test_name),
    Field("specification", "Specification", STRING, _limit),
    Field("result", "Result", NUMBER, _amount(90, 105)),
    Field("conforms", "Conforms", BOOLEAN, _flag(0.85)),
)
# A deviation as a batch record mentions it: an id, and a free-text account.
_DEVIATION_ITEM = (
    Field("id", "Deviation", STRING, _code("DEV", 4)),
    Field("description", "Description", STRING, _pick(_DEVIATION_NOTES), required=False),
)
_PARTY = (
    Field("name", "Name", STRING, _pick(_COMPANIES)),
    Field("address", "Address", STRING, _address, required=False),
)

DOMAINS: tuple[Domain, ...] = (
    Domain(
        "batch_record",
        "Batch Manufacturing Record",
        (
            Field("batch_number", "Batch number", STRING, _code("B")),
            Field("product", "Product", STRING, _pick(_PRODUCTS)),
            Field("manufacture_date", "Date of manufacture", DATE, _date),
            Field("batch_size_units", "Batch size (units)", INTEGER, _count(1000, 250000)),
            Field("site", "Manufacturing site", STRING, _pick(_CITIES), required=False),
            Field(
                "operator",
                "Operator",
                STRING,
                _pick(_PEOPLE),
                required=False,
                aliases=(("performed_by", "Performed by"), ("prepared_by", "Prepared by")),
            ),
            Field(
                "status",
                "Batch status",
                ENUM,
                choices=("released", "quarantined", "rejected"),
                required=False,
            ),
            Field("materials", "Materials used", ARRAY, children=_MATERIAL, required=False),
            Field("deviations", "Deviations", ARRAY, children=_DEVIATION_ITEM, required=False),
            Field("released", "Released by QA", BOOLEAN, _flag(0.7), required=False),
            # A signature after the release decision, so that a flag is not always the end.
            Field(
                "approved_by",
                "Approved by",
                STRING,
                _pick(_PEOPLE),
                required=False,
                aliases=(
                    ("checked_by", "Checked by"),
                    ("verified_by", "Verified by"),
                    ("signed_off_by", "Signed off by"),
                    ("qa_signatory", "QA signature"),
                    ("release_approver", "Release approved by"),
                ),
            ),
        ),
        (_printed_on, _previous_batch, _page, _process_check),
    ),
    Domain(
        "deviation",
        "Deviation Report",
        (
            Field("deviation_id", "Deviation ID", STRING, _code("DEV", 4)),
            Field("reported_on", "Reported on", DATE, _date),
            Field(
                "reported_by",
                "Reported by",
                STRING,
                _pick(_PEOPLE),
                aliases=(("raised_by", "Raised by"), ("originator", "Originator")),
            ),
            Field("severity", "Severity", ENUM, choices=("minor", "major", "critical")),
            Field("batch_number", "Affected batch", STRING, _code("B"), required=False),
            Field(
                "root_cause",
                "Root cause",
                ENUM,
                choices=("equipment", "procedure", "material", "human error"),
                required=False,
            ),
            Field("capa_required", "CAPA required", BOOLEAN, _flag(0.5)),
            Field(
                "investigator",
                "Investigator",
                OBJECT,
                children=(
                    Field("name", "Name", STRING, _pick(_PEOPLE)),
                    Field("email", "Email", STRING, _email, required=False),
                ),
                required=False,
            ),
        ),
        (_printed_on, _old_reference, _page),
    ),
    Domain(
        "certificate_of_analysis",
        "Certificate of Analysis",
        (
            Field("product", "Product", STRING, _pick(_PRODUCTS)),
            Field("lot_number", "Lot number", STRING, _code("LOT", 5)),
            Field("manufacturer", "Manufacturer", STRING, _pick(_COMPANIES)),
            Field("test_date", "Date of testing", DATE, _date),
            Field("expiry_date", "Expiry date", DATE, _date, required=False),
            Field(
                "approved_by",
                "Approved by",
                STRING,
                _pick(_PEOPLE),
                required=False,
                aliases=(("released_by", "Released by"), ("authorised_by", "Authorised by")),
            ),
            Field("results", "Test results", ARRAY, children=_TEST_RESULT, max_items=3),
        ),
        (_printed_on, _previous_batch, _page),
    ),
    Domain(
        "invoice",
        "Invoice",
        (
            Field("invoice_number", "Invoice number", STRING, _code("INV", 6)),
            Field("invoice_date", "Invoice date", DATE, _date),
            Field("seller", "Seller", OBJECT, children=_PARTY),
            Field("buyer", "Buyer", OBJECT, children=_PARTY, required=False),
            Field("currency", "Currency", ENUM, choices=("EUR", "USD", "CHF", "GBP")),
            Field("total", "Total amount", NUMBER, _amount(50, 25000)),
            Field("due_date", "Payment due", DATE, _date, required=False),
            Field("items", "Line items", ARRAY, children=_LINE_ITEM, required=False),
            Field("paid", "Paid in full", BOOLEAN, _flag(0.4), required=False),
        ),
        (_printed_on, _last_month_total, _page),
    ),
    Domain(
        "contract",
        "Service Agreement",
        (
            Field("contract_id", "Contract number", STRING, _code("C", 5)),
            Field("client", "Client", STRING, _pick(_COMPANIES)),
            Field("supplier", "Supplier", STRING, _pick(_COMPANIES)),
            Field("effective_date", "Effective date", DATE, _date),
            Field("term_months", "Term (months)", INTEGER, _count(6, 60)),
            Field("annual_fee", "Annual fee", NUMBER, _amount(1000, 90000), required=False),
            Field(
                "governing_law",
                "Governing law",
                ENUM,
                choices=("Switzerland", "Ireland", "Germany", "New York"),
                required=False,
            ),
            Field("auto_renewal", "Automatic renewal", BOOLEAN, _flag(0.5)),
            Field(
                "signatory",
                "Signed by",
                STRING,
                _pick(_PEOPLE),
                required=False,
                aliases=(
                    ("signed_by", "Signature"),
                    ("authorized_signatory", "Authorized signatory"),
                ),
            ),
        ),
        (_printed_on, _old_reference, _last_month_total),
    ),
)

DOMAIN_NAMES = tuple(domain.name for domain in DOMAINS)


def domain_named(name: str) -> Domain:
    for domain in DOMAINS:
        if domain.name == name:
            return domain
    raise ValueError(f"unknown domain {name!r}; choose from {', '.join(DOMAIN_NAMES)}")
