"""Write examples.jsonl: invoice texts (input) and the JSON to extract from them (output).

Deterministic: the same seed gives the same file, byte for byte. Run from anywhere:

    python examples/invoice-extraction/make_examples.py

Every vendor is fictional and keeps its own layout, language, date style and number format, the way real
suppliers do. The output is one compact JSON object with a fixed schema:

    vendor          issuing company, as printed
    invoice_number  as printed
    issue_date      ISO 8601 (YYYY-MM-DD)
    due_date        ISO 8601; computed from payment terms ("net 30", "14 Tage"); the issue date when
                    payable on receipt; null when the invoice states none (e.g. paid in cash)
    currency        ISO 4217 code
    line_items      [{description, quantity, unit_price}] in printed order, numbers as JSON numbers
    subtotal        sum of quantity x unit_price over the items (net)
    tax             VAT or sales tax amount (0 when none is charged)
    total           subtotal + tax

Before writing, every example is checked: line amounts, subtotal, tax and total add up to the cent, and
the invoice number, every item description and the three amounts appear in the input.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

SEED = 7321
N_EXAMPLES = 36
OUT = Path(__file__).resolve().parent / "examples.jsonl"
CENT = Decimal("0.01")
INSTRUCTION = (
    "Extract the invoice below as one line of JSON with exactly these keys: vendor, invoice_number, "
    "issue_date (YYYY-MM-DD), due_date (YYYY-MM-DD, or null if none is stated), currency (ISO 4217 code), "
    "line_items (list of {description, quantity, unit_price}), subtotal, tax, total. "
    "Use numbers, not strings, for amounts."
)

MONTHS_EN = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
             "October", "November", "December"]  # fmt: skip
MONTHS_FR = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
             "novembre", "décembre"]  # fmt: skip

# (description, unit price range in whole units, quantity choices); a price range (a, b) draws a price
# with cents, a tuple of values picks one of them.
CATALOG = {
    "office": [("A4 copier paper, box of 5 reams", (18, 26), (1, 2, 3, 4, 5, 6)),
               ("Black toner cartridge TN-2420", (45, 70), (1, 2, 3)),
               ("Ring binders, A4, pack of 10", (9, 15), (1, 2, 4)),
               ("Whiteboard markers, assorted, pack of 8", (6, 11), (1, 2, 3, 5)),
               ("Desk organiser, bamboo", (14, 22), (1, 2, 4, 6)),
               ("Sticky notes 76x76 mm, 12 pads", (7, 12), (1, 2, 3, 10)),
               ("Delivery charge", (5, 9), (1,))],
    "print": [("Business cards, 400 gsm, 500 pcs", (38, 55), (1, 2, 3)),
              ("Flyer A5, double-sided, 1000 pcs", (85, 140), (1, 2)),
              ("Roll-up banner 85x200 cm", (70, 95), (1, 2)),
              ("Logo redesign (flat fee)", (350, 600), (1,)),
              ("Design hours", (55, 75), (1, 2, 3, 4.5, 6)),
              ("Courier delivery", (12, 18), (1,))],
    "buero": [("Laserdrucker HL-7200 Wartung", (80, 120), (1,)),
              ("Arbeitszeit Techniker (Std.)", (68, 89), (0.5, 1, 1.5, 2, 3)),
              ("Anfahrtspauschale", (35, 45), (1,)),
              ("Trommeleinheit DR-300", (95, 130), (1, 2)),
              ("Netzwerkkabel Cat6, 5 m", (6, 10), (2, 4, 5, 10)),
              ("Tastatur kabellos, DE-Layout", (29, 45), (1, 2, 3))],
    "baeckerei": [("Roggenmischbrot 1 kg", (4, 5), (2, 4, 6, 10)),
                  ("Butterbrezel", (1.10, 1.20, 1.35), (10, 20, 25, 40)),
                  ("Apfelkuchen, Blech", (24, 32), (1, 2)),
                  ("Vollkornbrötchen", (0.55, 0.65, 0.70, 0.80), (20, 30, 50)),
                  ("Käsekuchen, ganz", (19, 26), (1, 2, 3)),
                  ("Kaffee, Thermoskanne 2 l", (9, 14), (1, 2, 4))],
    "it": [("Senior consulting (hours)", (140, 190), (2, 4, 6.5, 8, 12, 16)),
           ("Cloud migration workshop (day)", (1100, 1600), (1, 2)),
           ("Security review, fixed price", (2200, 3500), (1,)),
           ("On-call support retainer (month)", (600, 900), (1,)),
           ("Junior developer (hours)", (65, 95), (4, 8, 10, 20, 24.5))],
    "furniture": [("Ergonomic office chair, mesh back", (240, 390), (1, 2, 4, 6)),
                  ("Height-adjustable desk 160x80", (420, 650), (1, 2, 3)),
                  ("Monitor arm, dual", (85, 130), (1, 2, 4)),
                  ("Filing cabinet, 3 drawers", (180, 260), (1, 2)),
                  ("Assembly service (per item)", (35, 50), (1, 2, 3, 4, 6))],
    "atelier": [("Séance photo portrait (2 h)", (180, 260), (1,)),
                ("Retouche photo", (12, 20), (5, 10, 15, 20)),
                ("Tirage fine art 30x40 cm", (35, 55), (1, 2, 3, 6)),
                ("Encadrement bois naturel", (45, 70), (1, 2, 3)),
                ("Frais de déplacement", (25, 40), (1,))],
    "translation": [("Translation EN>NL, technical manual (words)", (0.11, 0.12, 0.14, 0.15),
                     (1800, 2350, 3200, 4100, 5600)),
                    ("Proofreading (hours)", (45, 60), (1, 1.5, 2, 3)),
                    ("Terminology list, fixed fee", (120, 180), (1,)),
                    ("Rush surcharge", (50, 90), (1,))],
    "software": [("Lizenz Planungsmodul, Jahresabo (Benutzer)", (240, 360), (3, 5, 8, 10, 12)),
                 ("Einrichtung und Datenmigration", (900, 1500), (1,)),
                 ("Schulung vor Ort (Tag)", (1200, 1600), (1, 2)),
                 ("Supportpaket Premium (Monat)", (150, 220), (1, 3, 6, 12))],
    "catering": [("Lunch buffet (per person)", (145, 210), (12, 18, 25, 30, 40)),
                 ("Coffee and pastries (per person)", (65, 95), (12, 18, 25, 30, 40)),
                 ("Vegan platter", (420, 560), (1, 2)),
                 ("Staff, hours", (310, 380), (3, 4, 5, 6)),
                 ("Delivery and set-up", (450, 650), (1,))],
    "garden": [("Lawn mowing and edging", (45, 60), (1, 2, 4)),
               ("Hedge trimming (hours)", (32, 40), (2, 3, 4.5, 6)),
               ("Green waste removal, per load", (55, 75), (1, 2)),
               ("Mulch, 60 l bag", (7, 10), (5, 10, 15, 20)),
               ("Shrub planting, per plant", (12, 18), (4, 6, 10))],
}  # fmt: skip

# name, layout, currency, tax rate (percent), catalog, invoice number pattern, bill-to customers
VENDORS = [
    ("Northwind Paper Supplies Ltd", "uk", "GBP", "20", "office", "NPS-{y}-{n:04d}",
     ["Greenleaf Studio", "Harlow & Finch Solicitors", "Maple Dental Practice"]),
    ("Brightline Print & Design Ltd", "uk", "GBP", "20", "print", "BPD{n:05d}",
     ["The Copper Kettle Café", "Riverside Yoga", "Ashdown Estate Agents"]),
    ("Kellermann Bürotechnik GmbH", "de", "EUR", "19", "buero", "RE-{y}-{n:05d}",
     ["Steuerberatung Vogt & Partner", "Praxis Dr. Lindner", "Hausverwaltung Krämer KG"]),
    ("Bäckerei Sonnenkorn", "de_receipt", "EUR", "7", "baeckerei", "{n:06d}",
     ["Kita Regenbogen e.V.", "Autohaus Berger", "Kanzlei Yilmaz"]),
    ("Harborview IT Consulting LLC", "us", "USD", "0", "it", "{n:05d}",
     ["Blue Mesa Logistics", "Cedar Point Health", "Lumen Analytics Inc."]),
    ("Maple & Pine Office Furniture Inc.", "us", "USD", "8.25", "furniture", "MP-{n:06d}",
     ["Austin Coworking Hub", "Rivera Law Group", "Pecan Street Dental"]),
    ("Atelier Lumière SARL", "fr", "EUR", "20", "atelier", "F-{y}-{n:03d}",
     ["Hôtel des Tilleuls", "Mme Claire Fontaine", "Agence Boréal"]),
    ("Van Dijk Vertalingen", "email", "EUR", "0", "translation", "VDV-{y}{n:03d}",
     ["Kessler Maschinenbau GmbH", "Oakridge Instruments Ltd", "Sørensen Marine ApS"]),
    ("Alpenblick Software AG", "ch", "CHF", "8.1", "software", "{y}-{n:04d}",
     ["Schreinerei Baumann", "Gemeinde Oberried", "Physiotherapie Keller"]),
    ("Nordljus Catering AB", "se", "SEK", "12", "catering", "{n:04d}",
     ["Eklund Arkitekter AB", "Malmö Tech Meetup", "Lindgren & Co Revision"]),
    ("Greenway Garden Services", "email", "EUR", "13.5", "garden", "GGS-{n:03d}",
     ["Mrs. Aoife Brennan", "Cloverfield Apartments Management", "St. Brigid's Parish Hall"]),
]  # fmt: skip


def money(value: Decimal, sep: str, dec: str) -> str:
    """`value` with two decimals, thousands separator `sep` and decimal mark `dec`."""
    whole, cents = f"{value:,.2f}".split(".")
    return whole.replace(",", sep) + dec + cents


def qty(value: Decimal, dec: str = ".") -> str:
    text = f"{value:f}".rstrip("0").rstrip(".") if "." in f"{value:f}" else f"{value:f}"
    return text.replace(".", dec)


def fmt_date(day: dt.date, style: str) -> str:
    if style == "uk":
        return f"{day.day} {MONTHS_EN[day.month - 1]} {day.year}"
    if style == "us":
        return f"{day.month:02d}/{day.day:02d}/{day.year}"
    if style == "us_long":
        return f"{MONTHS_EN[day.month - 1]} {day.day}, {day.year}"
    if style == "de":
        return f"{day.day:02d}.{day.month:02d}.{day.year}"
    if style == "fr":
        return f"{day.day:02d}/{day.month:02d}/{day.year}"
    if style == "fr_long":
        return f"{day.day} {MONTHS_FR[day.month - 1]} {day.year}"
    return day.isoformat()


def draw_items(rng: random.Random, catalog: str) -> list[dict]:
    entries = rng.sample(CATALOG[catalog], rng.randint(1, min(4, len(CATALOG[catalog]))))
    if catalog == "translation" and CATALOG[catalog][0] not in entries:
        entries[0] = CATALOG[catalog][0]  # a translator's invoice always bills the words
    items = []
    for description, prices, quantities in entries:
        if len(prices) == 2 and prices[1] > prices[0] + 1:
            price = Decimal(rng.randint(prices[0] * 100, prices[1] * 100)) / 100
            if rng.random() < 0.4:  # round prices are common too
                price = price.quantize(Decimal("1"))
        else:
            price = Decimal(str(rng.choice(prices)))
        quantity = Decimal(str(rng.choice(quantities)))
        if quantity * price != (quantity * price).quantize(CENT):  # half hours: keep the amount in cents
            price = price.quantize(Decimal("0.1"))
        amount = quantity * price
        assert amount == amount.quantize(CENT), (description, quantity, price)
        items.append(
            {"description": description, "quantity": quantity, "unit_price": price, "amount": amount}
        )
    return items


def make_invoice(rng: random.Random, vendor: tuple, counter: int) -> dict:
    name, layout, currency, rate, catalog, number_pattern, customers = vendor
    issue = dt.date(2024, 1, 8) + dt.timedelta(days=rng.randint(0, 540))
    items = draw_items(rng, catalog)
    subtotal = sum((i["amount"] for i in items), Decimal(0))
    tax = (subtotal * Decimal(rate) / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    terms_days = rng.choice([14, 30, 30, 45, 60]) if layout != "de" else rng.choice([10, 14, 30])
    due_kind = rng.choice(["date", "terms", "terms", "receipt", "none"])
    if layout == "de_receipt":
        due_kind = "none"  # a bakery sales slip: paid at the counter
    if layout in ("uk", "fr", "se") and due_kind in ("receipt", "none"):
        due_kind = "date"
    if layout == "ch" and due_kind == "none":
        due_kind = "terms"
    due = {"date": issue + dt.timedelta(days=terms_days), "terms": issue + dt.timedelta(days=terms_days),
           "receipt": issue, "none": None}[due_kind]  # fmt: skip
    return {
        "vendor": name, "layout": layout, "currency": currency, "rate": Decimal(rate),
        "number": number_pattern.format(y=issue.year, n=counter), "issue": issue, "due": due,
        "due_kind": due_kind, "terms_days": terms_days, "customer": rng.choice(customers), "items": items,
        "subtotal": subtotal, "tax": tax, "total": subtotal + tax,
    }  # fmt: skip


def render_uk(inv: dict, rng: random.Random) -> str:
    m = lambda v: "£" + money(v, ",", ".")  # noqa: E731
    lines = [inv["vendor"].upper(), ADDRESS[inv["vendor"]], "VAT Reg. No. " + TAX_ID[inv["vendor"]], "", "INVOICE", "",
             f"Invoice number: {inv['number']}", f"Invoice date:   {fmt_date(inv['issue'], 'uk')}",
             f"Due date:       {fmt_date(inv['due'], 'uk')}", "", "Bill to:", inv["customer"], "",
             f"{'Description':<42}{'Qty':>6}{'Unit price':>13}{'Amount':>13}"]  # fmt: skip
    for i in inv["items"]:
        lines.append(
            f"{i['description']:<42}{qty(i['quantity']):>6}{m(i['unit_price']):>13}{m(i['amount']):>13}"
        )
    lines += ["", f"{'Subtotal':>61}{m(inv['subtotal']):>13}", f"{'VAT @ ' + qty(inv['rate']) + '%':>61}"
              f"{m(inv['tax']):>13}", f"{'TOTAL DUE':>61}{m(inv['total']):>13}", "",
              "Please pay by bank transfer quoting the invoice number."]  # fmt: skip
    return "\n".join(lines)


def render_de(inv: dict, rng: random.Random) -> str:
    m = lambda v: money(v, ".", ",") + " €"  # noqa: E731
    lines = [inv["vendor"], "Industriestraße 41 · 70565 Stuttgart · USt-IdNr. DE 318 442 907", "",
             inv["customer"], "", f"Rechnung Nr. {inv['number']}",
             f"Rechnungsdatum: {fmt_date(inv['issue'], 'de')}", "",
             f"{'Pos.':<6}{'Bezeichnung':<40}{'Menge':>8}{'Einzelpreis':>14}{'Gesamt':>14}"]  # fmt: skip
    for n, i in enumerate(inv["items"], start=1):
        lines.append(f"{n:<6}{i['description']:<40}{qty(i['quantity'], ','):>8}{m(i['unit_price']):>14}"
                     f"{m(i['amount']):>14}")  # fmt: skip
    lines += ["", f"{'Nettobetrag':>68}{m(inv['subtotal']):>14}",
              f"{'zzgl. ' + qty(inv['rate'], ',') + ' % USt.':>68}{m(inv['tax']):>14}",
              f"{'Rechnungsbetrag':>68}{m(inv['total']):>14}", ""]  # fmt: skip
    if inv["due_kind"] == "date":
        lines.append(f"Zahlbar bis zum {fmt_date(inv['due'], 'de')} ohne Abzug.")
    elif inv["due_kind"] == "terms":
        lines.append(f"Zahlbar innerhalb von {inv['terms_days']} Tagen ab Rechnungsdatum ohne Abzug.")
    elif inv["due_kind"] == "receipt":
        lines.append("Zahlbar sofort nach Erhalt der Rechnung.")
    else:
        lines.append("Vielen Dank für Ihren Auftrag.")
    return "\n".join(lines)


def render_de_receipt(inv: dict, rng: random.Random) -> str:
    m = lambda v: money(v, ".", ",")  # noqa: E731
    lines = [f"*** {inv['vendor'].upper()} ***", "Lindenplatz 3, 79098 Freiburg", "",
             f"Rechnung / Beleg-Nr. {inv['number']}", f"Datum: {fmt_date(inv['issue'], 'de')}",
             f"Kunde: {inv['customer']}", "-" * 44]  # fmt: skip
    for i in inv["items"]:
        lines.append(i["description"])
        lines.append(
            f"  {qty(i['quantity'], ',')} x {m(i['unit_price'])}".ljust(32) + f"{m(i['amount']):>12}"
        )
    lines += ["-" * 44, f"{'Summe netto EUR':<32}{m(inv['subtotal']):>12}",
              f"{'MwSt ' + qty(inv['rate'], ',') + ' %':<32}{m(inv['tax']):>12}",
              f"{'GESAMT EUR':<32}{m(inv['total']):>12}", "", "Betrag bar erhalten. Danke!"]  # fmt: skip
    return "\n".join(lines)


def render_us(inv: dict, rng: random.Random) -> str:
    m = lambda v: "$" + money(v, ",", ".")  # noqa: E731
    style = rng.choice(["us", "us_long"])
    lines = [inv["vendor"], *ADDRESS[inv["vendor"]].split(" / "), "",
             f"INVOICE #{inv['number']}", f"Date: {fmt_date(inv['issue'], style)}"]  # fmt: skip
    if inv["due_kind"] == "date":
        lines.append(f"Due Date: {fmt_date(inv['due'], style)}")
    elif inv["due_kind"] == "terms":
        lines.append(f"Terms: Net {inv['terms_days']}")
    elif inv["due_kind"] == "receipt":
        lines.append("Terms: Due on receipt")
    lines += ["", f"BILL TO: {inv['customer']}", "",
              f"{'ITEM':<40}{'QTY':>6}{'RATE':>12}{'AMOUNT':>13}", "-" * 71]  # fmt: skip
    for i in inv["items"]:
        lines.append(
            f"{i['description']:<40}{qty(i['quantity']):>6}{m(i['unit_price']):>12}{m(i['amount']):>13}"
        )
    tax_label = f"Sales Tax ({qty(inv['rate'])}%)" if inv["rate"] else "Sales Tax (exempt services)"
    lines += ["-" * 71, f"{'Subtotal':>58}{m(inv['subtotal']):>13}", f"{tax_label:>58}{m(inv['tax']):>13}",
              f"{'BALANCE DUE':>58}{m(inv['total']):>13}", "", f"Make checks payable to {inv['vendor'].rstrip('.')}."]  # fmt: skip
    return "\n".join(lines)


def render_fr(inv: dict, rng: random.Random) -> str:
    m = lambda v: money(v, " ", ",") + " €"  # noqa: E731
    style = rng.choice(["fr", "fr_long"])
    lines = [inv["vendor"], "8 rue des Arts, 69002 Lyon", "SIRET 812 455 903 00021 · TVA FR47812455903", "",
             f"FACTURE N° {inv['number']}", f"Date : {fmt_date(inv['issue'], style)}",
             f"Échéance : {fmt_date(inv['due'], style)}", f"Client : {inv['customer']}", "",
             "| Désignation | Qté | Prix unitaire HT | Total HT |", "|---|---|---|---|"]  # fmt: skip
    for i in inv["items"]:
        lines.append(
            f"| {i['description']} | {qty(i['quantity'], ',')} | {m(i['unit_price'])} | {m(i['amount'])} |"
        )
    lines += ["", f"Total HT : {m(inv['subtotal'])}", f"TVA {qty(inv['rate'], ',')} % : {m(inv['tax'])}",
              f"Total TTC : {m(inv['total'])}", "",
              "Pénalités de retard : trois fois le taux d'intérêt légal."]  # fmt: skip
    return "\n".join(lines)


def render_email(inv: dict, rng: random.Random) -> str:
    m = lambda v: money(v, ",", ".") + " EUR"  # noqa: E731
    sender = inv["vendor"].split()[0]
    when = fmt_date(inv["issue"], rng.choice(["us_long", "iso"]))
    lines = [f"Subject: Invoice {inv['number']}", "", f"Dear {inv['customer']},", "",
             f"Please find {'my' if sender == 'Van' else 'our'} invoice {inv['number']} of {when} for the work below.",
             ""]  # fmt: skip
    for i in inv["items"]:
        lines.append(f"- {i['description']}: {qty(i['quantity'])} x {m(i['unit_price'])} = {m(i['amount'])}")
    lines.append("")
    lines.append(f"Net amount: {m(inv['subtotal'])}")
    if inv["rate"]:
        lines.append(f"VAT {qty(inv['rate'])}%: {m(inv['tax'])}")
    else:
        lines.append(f"VAT: {m(inv['tax'])} (reverse charge, VAT to be accounted for by the recipient)")
    lines.append(f"Total: {m(inv['total'])}")
    lines.append("")
    if inv["due_kind"] == "date":
        lines.append(f"Kindly pay by {fmt_date(inv['due'], 'us_long')}.")
    elif inv["due_kind"] == "terms":
        lines.append(f"Payment terms: {inv['terms_days']} days from the invoice date.")
    elif inv["due_kind"] == "receipt":
        lines.append("Payment is due on receipt.")
    lines += ["IBAN: NL91 ABNA 0417 1643 00" if sender == "Van" else "IBAN: IE29 AIBK 9311 5212 3456 78", "",
              "Kind regards,", inv["vendor"]]  # fmt: skip
    return "\n".join(lines)


def render_ch(inv: dict, rng: random.Random) -> str:
    m = lambda v: money(v, "'", ".")  # noqa: E731
    lines = [inv["vendor"], "Seestrasse 112, 8002 Zürich", "MWST-Nr. CHE-109.774.512 MWST", "",
             f"Rechnung {inv['number']}", f"Datum: {fmt_date(inv['issue'], 'de')}", f"An: {inv['customer']}", "",
             f"{'Leistung':<46}{'Anzahl':>8}{'Preis CHF':>12}{'Betrag CHF':>13}"]  # fmt: skip
    for i in inv["items"]:
        lines.append(
            f"{i['description']:<46}{qty(i['quantity']):>8}{m(i['unit_price']):>12}{m(i['amount']):>13}"
        )
    lines += ["", f"{'Total exkl. MWST':>66}{m(inv['subtotal']):>13}",
              f"{'MWST ' + qty(inv['rate']) + ' %':>66}{m(inv['tax']):>13}",
              f"{'Total inkl. MWST CHF':>66}{m(inv['total']):>13}", ""]  # fmt: skip
    if inv["due_kind"] == "date":
        lines.append(f"Zahlbar bis {fmt_date(inv['due'], 'de')}.")
    elif inv["due_kind"] == "terms":
        lines.append(f"Zahlbar innert {inv['terms_days']} Tagen netto.")
    else:
        lines.append("Zahlbar sofort nach Erhalt.")
    return "\n".join(lines)


def render_se(inv: dict, rng: random.Random) -> str:
    m = lambda v: money(v, " ", ",")  # noqa: E731
    lines = [f"{inv['vendor']} · Org.nr 556812-4471", "Invoice / Faktura", "",
             f"Fakturanummer: {inv['number']}", f"Fakturadatum: {fmt_date(inv['issue'], 'iso')}",
             f"Förfallodatum: {fmt_date(inv['due'], 'iso')}", f"Kund: {inv['customer']}", "",
             "Beskrivning; Antal; À-pris (kr); Belopp (kr)"]  # fmt: skip
    for i in inv["items"]:
        lines.append(f"{i['description']}; {qty(i['quantity'], ',')}; {m(i['unit_price'])}; {m(i['amount'])}")
    lines += ["", f"Summa exkl. moms: {m(inv['subtotal'])} kr", f"Moms {qty(inv['rate'])} %: {m(inv['tax'])} kr",
              f"Att betala: {m(inv['total'])} kr", "", "Bankgiro 5432-1098"]  # fmt: skip
    return "\n".join(lines)


ADDRESS = {
    "Northwind Paper Supplies Ltd": "12 Harbour Road, Leeds LS1 4AB",
    "Brightline Print & Design Ltd": "Unit 7, Canal Works, Bristol BS2 0HQ",
    "Harborview IT Consulting LLC": "88 Pier Street, Floor 3 / Portland, ME 04101",
    "Maple & Pine Office Furniture Inc.": "2150 Commerce Blvd, Suite 400 / Austin, TX 78701",
}
TAX_ID = {"Northwind Paper Supplies Ltd": "GB 284 5519 07", "Brightline Print & Design Ltd": "GB 731 0084 52"}

RENDER = {"uk": render_uk, "de": render_de, "de_receipt": render_de_receipt, "us": render_us, "fr": render_fr,
          "email": render_email, "ch": render_ch, "se": render_se}  # fmt: skip


def number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def target(inv: dict) -> str:
    record = {
        "vendor": inv["vendor"],
        "invoice_number": inv["number"],
        "issue_date": inv["issue"].isoformat(),
        "due_date": inv["due"].isoformat() if inv["due"] else None,
        "currency": inv["currency"],
        "line_items": [
            {
                "description": i["description"],
                "quantity": number(i["quantity"]),
                "unit_price": number(i["unit_price"]),
            }
            for i in inv["items"]
        ],  # fmt: skip
        "subtotal": number(inv["subtotal"]),
        "tax": number(inv["tax"]),
        "total": number(inv["total"]),
    }
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def check(example: dict) -> list[str]:
    """Arithmetic and consistency problems of one example (empty: it adds up)."""
    out = json.loads(example["output"])
    dec = lambda v: Decimal(str(v))  # noqa: E731
    problems = []
    expected_keys = ["vendor", "invoice_number", "issue_date", "due_date", "currency", "line_items", "subtotal",
                     "tax", "total"]  # fmt: skip
    if list(out) != expected_keys:
        problems.append(f"keys {list(out)}")
    subtotal = sum((dec(i["quantity"]) * dec(i["unit_price"]) for i in out["line_items"]), Decimal(0))
    if subtotal != dec(out["subtotal"]):
        problems.append(f"items sum to {subtotal}, subtotal is {out['subtotal']}")
    if dec(out["subtotal"]) + dec(out["tax"]) != dec(out["total"]):
        problems.append("subtotal + tax != total")
    for key in ("subtotal", "tax", "total"):
        if dec(out[key]) != dec(out[key]).quantize(CENT):
            problems.append(f"{key} has more than two decimals")
    dt.date.fromisoformat(out["issue_date"])
    if out["due_date"] is not None and dt.date.fromisoformat(out["due_date"]) < dt.date.fromisoformat(
        out["issue_date"]
    ):
        problems.append("due before issue")
    text = example["input"]
    for needle in [out["invoice_number"], *(i["description"] for i in out["line_items"])]:
        if needle not in text:
            problems.append(f"`{needle}` not in the input")
    for key in ("subtotal", "tax", "total"):
        value = dec(out[key])
        if not any(
            money(value, sep, mark) in text for sep, mark in ((",", "."), (".", ","), (" ", ","), ("'", "."))
        ):
            problems.append(f"{key} {value} not printed in the input")
    return problems


def main() -> None:
    rng = random.Random(SEED)
    counters = {v[0]: rng.randint(40, 900) for v in VENDORS}
    examples = []
    for n in range(N_EXAMPLES):
        vendor = VENDORS[n % len(VENDORS)]
        counters[vendor[0]] += rng.randint(1, 60)
        inv = make_invoice(rng, vendor, counters[vendor[0]])
        examples.append(
            {"instruction": INSTRUCTION, "input": RENDER[inv["layout"]](inv, rng), "output": target(inv)}
        )
    rng.shuffle(examples)
    problems = [f"example {n + 1}: {p}" for n, ex in enumerate(examples) for p in check(ex)]
    if len({ex["input"] for ex in examples}) != len(examples):
        problems.append("two inputs are identical")
    if problems:
        raise SystemExit("examples do not add up:\n" + "\n".join(problems))
    with OUT.open("w", encoding="utf-8", newline="\n") as f:
        for example in examples:
            f.write(json.dumps(example, ensure_ascii=False) + "\n")
    print(f"wrote {len(examples)} examples to {OUT}")


if __name__ == "__main__":
    main()
