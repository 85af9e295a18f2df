"""Write examples.jsonl: chat examples of the Slotwise support assistant in its house style.

Deterministic: the same seed gives the same file, byte for byte. Run from anywhere:

    python examples/support-assistant/make_examples.py

House style of every assistant turn (checked by `style_problems` before anything is written):

1. The first line greets the customer by first name: `Hi <first>!` (`Hi again, <first>!` in a follow-up turn).
2. Then one to three numbered steps (`1.`, `2.`, `3.`), one short sentence each (at most 25 words).
3. Menu paths are bold and use ` › ` between levels: **Settings › Calendars**.
4. The last line is always `Happy scheduling! — The Slotwise team`.
5. No apologies, no exclamation marks inside the steps, nothing else.

The customer's name and plan come from the system message (the app knows who is signed in); answers to
questions about features the customer's plan lacks say so and show how to upgrade. The facts in the steps
match the help-centre articles in kb/.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

SEED = 20250611
N_EXAMPLES = 1200
FOLLOW_UP_SHARE = 0.15  # share of examples with a second user/assistant turn
OUT = Path(__file__).resolve().parent / "examples.jsonl"

SIGN_OFF = "Happy scheduling! — The Slotwise team"
SYSTEM = (
    "You are the support assistant of Slotwise, an online appointment scheduling app. "
    "Customer: {first} {last}. Plan: {plan}."
)
PLANS = ["Free", "Starter", "Pro", "Team"]
PLAN_WEIGHTS = [3, 3, 3, 2]
RANK = {plan: i for i, plan in enumerate(PLANS)}
CALENDAR_LIMIT = {"Free": 1, "Starter": 2, "Pro": 6, "Team": 6}

FIRST_NAMES = [
    "Amara", "Ben", "Chiara", "Dmitri", "Elena", "Farid", "Grace", "Hiroshi", "Ines", "Jonas", "Kemi", "Lucas",
    "Maya", "Nikhil", "Olga", "Pablo", "Quinn", "Rosa", "Samir", "Tessa", "Umar", "Vera", "Wen", "Ximena",
    "Yusuf", "Zoe", "Aiko", "Bruno", "Carmen", "Daniel", "Esther", "Felix", "Gabriela", "Hamza", "Ida",
    "Jamal", "Katarina", "Liam", "Mei", "Noah", "Oksana", "Priya", "Rafael", "Sofia", "Tomás", "Ulla",
    "Vikram", "Wanjiru", "Yara", "Zainab", "Anders", "Beatriz", "Chen", "Dara", "Emeka", "Fatima", "Gustav",
    "Hana", "Ivan", "Julia", "Kwame", "Lena", "Marco", "Nadia", "Oscar", "Paula", "Ravi", "Sara", "Theo",
]  # fmt: skip
LAST_NAMES = [
    "Okafor", "Schmidt", "Rossi", "Ivanova", "Haddad", "Tanaka", "Martin", "Nakamura", "Silva", "Berg",
    "Adeyemi", "Dubois", "Kowalski", "Patel", "Garcia", "Novak", "Jensen", "Moreau", "Khan", "Lindqvist",
    "Mensah", "Costa", "Fischer", "Yilmaz", "O'Brien", "Horvat", "Sato", "Reyes", "Andersen", "Popescu",
    "Walker", "Nguyen", "Ferrari", "Mwangi", "Kaur", "Larsen", "Bianchi", "Hoffmann", "Santos", "Eriksson",
]  # fmt: skip

OPENERS = ["", "", "", "Hi,", "Hello,", "Hey there,", "Good morning,", "Quick question:", "Hi support,", "Hello team,"]  # fmt: skip
CLOSERS = ["", "", "", "Thanks!", "Thank you.", "Thanks in advance.", "Cheers", "Any help appreciated."]
FOLLOW_UP_OPENERS = [
    "Thanks, that worked. One more thing:", "Great, done. Another question:", "Perfect. Also,",
    "Got it, thank you. And", "That fixed it. While I'm here:",
]  # fmt: skip


def upgrade_steps(feature: str, plans: str, then: str) -> list[str]:
    """Steps for a feature the customer's plan lacks: say so, show where to upgrade, then the first step."""
    return [
        f"{feature} {plans}, and your account is on {{plan}}.",
        "Upgrade under **Settings › Billing › Change plan**; upgrades take effect immediately.",
        then,
    ]


def steps_multiple_calendars(ctx: dict) -> list[str]:
    plan = ctx["plan"]
    if plan == "Free":
        return [
            "The Free plan connects 1 calendar, Starter connects 2, and Pro and Team connect 6.",
            "Upgrade under **Settings › Billing › Change plan**; upgrades take effect immediately.",
            "Then add the next calendar under **Settings › Calendars › Connect calendar**.",
        ]
    last = (
        "For more than 2, upgrade to Pro under **Settings › Billing › Change plan**."
        if plan == "Starter"
        else "New bookings are written only to the calendar you choose as **add to**."
    )
    return [
        f"Your {plan} plan connects up to {CALENDAR_LIMIT[plan]} calendars, and all of them are checked for conflicts.",
        "Add each one under **Settings › Calendars › Connect calendar**.",
        last,
    ]


def steps_connect_calendar(ctx: dict) -> list[str]:
    if ctx["provider"] == "iCloud calendar":
        sign_in = "Pick iCloud and paste an app-specific password from your Apple ID settings, not your usual password."
    elif ctx["provider"] == "Outlook calendar":
        sign_in = "Pick Microsoft 365 / Outlook and sign in with the account that holds your appointments."
    else:
        sign_in = "Pick Google Calendar and sign in with the account that holds your appointments."
    steps = ["Open **Settings › Calendars** and choose **Connect calendar**.", sign_in,
             "Choose the **add to** calendar where new bookings should be written."]  # fmt: skip
    if ctx["plan"] == "Free":
        steps[2] = "The Free plan connects 1 calendar, so pick the one that holds most of your appointments."
    return steps


def steps_video(ctx: dict) -> list[str]:
    last = (
        "Meet links need a connected Google Calendar, because the calendar event creates them."
        if ctx["svc"] == "Google Meet"
        else "Each new booking then gets its own link in the e-mails and the calendar event."
    )
    return [
        f"Connect {ctx['svc']} under **Settings › Integrations**.",
        f"Open the event type, choose **Event type › Location › Video** and pick {ctx['svc']}.",
        last,
    ]


def steps_delete_account(ctx: dict) -> list[str]:
    if ctx["plan"] == "Free":
        first = ["Open **Settings › Account › Delete account** and type your e-mail address to confirm.",
                 "Your booking page goes offline at once."]  # fmt: skip
    else:
        first = ["Cancel your paid plan under **Settings › Billing** first, as deleting does not refund this period.",
                 "Then open **Settings › Account › Delete account** and type your e-mail address to confirm."]  # fmt: skip
    return [*first, "Your data is kept for 30 days in case you change your mind, then deleted for good."]


def steps_upgrade(ctx: dict) -> list[str]:
    steps = [
        f"Open **Settings › Billing › Change plan** and pick {ctx['target']}.",
        "The upgrade is immediate, and you pay the difference for the rest of this period, by the day.",
    ]
    if ctx["target"] == "Team":
        steps.append("Team needs at least 2 seats, billed at $20 per seat per month.")
    return steps


def steps_create_event_type(ctx: dict) -> list[str]:
    if ctx["plan"] == "Free":
        return [
            "The Free plan includes 1 event type, and every paid plan has unlimited event types.",
            "Upgrade under **Settings › Billing › Change plan**, or edit your existing event type instead.",
            f"Then choose **Event types › New event type** and set the duration to {ctx['dur']} minutes.",
        ]
    return [
        "Open **Event types** and choose **New event type**.",
        f'Name it "{ctx["label"].capitalize()}" and set the duration to {ctx["dur"]} minutes.',
        "Choose video, phone or an address as the location, then save and use **Copy link**.",
    ]


# Each intent: question templates (`q`), slot values to fill them (`slots`), and the answer's steps, either
# templates or a function of the context. `min_plan`: plans below it get `gated` steps instead.
INTENTS: list[dict] = [
    {
        "id": "connect_calendar",
        "q": ["How do I connect my {provider} to Slotwise?",
              "Can Slotwise read my {provider}? I want my busy times blocked.",
              "I just signed up. How do I link my {provider}?",
              "Where do I add my {provider}?"],
        "slots": {"provider": ["Google calendar", "Outlook calendar", "iCloud calendar"]},
        "steps": steps_connect_calendar,
    },
    {
        "id": "busy_not_blocked",
        "q": ["People are booking me at times when I already have meetings in my calendar.",
              "My busy times don't show as busy on my booking page, why?",
              "Slotwise ignores events in my calendar and lets clients double-book me.",
              "Why could someone book me during my {event}? It's in my calendar."],
        "slots": {"event": ["dentist appointment", "team meeting", "school pickup", "flight"]},
        "steps": ["Check that the event is marked **Busy** in your calendar, because events marked Free never block time.",
                  "Open **Settings › Calendars** and make sure **Check for conflicts** is on for that calendar.",
                  "If it shows **Reconnect needed**, choose **Reconnect** and sign in again; changes sync every 2 minutes."],
    },
    {
        "id": "multiple_calendars",
        "q": ["Can I connect both my work and my personal calendar?",
              "How many calendars can I link on my plan?",
              "I want Slotwise to check {n} calendars for conflicts. Is that possible?",
              "I added one calendar, but I can't add a second one."],
        "slots": {"n": ["two", "three", "four"]},
        "steps": steps_multiple_calendars,
    },
    {
        "id": "change_page_address",
        "q": ["How can I change my booking page address to {slug}?",
              "I'd like my link to be slotwise.example/{slug} instead. How?",
              "Can I rename my booking page URL to {slug}?",
              "How do I change my Slotwise link? I want {slug}."],
        "slots": {"slug": ["studio-lena", "dr-okafor", "yoga-with-mei", "bikefix-berlin", "coach-ravi",
                           "smile-dental", "paws-grooming", "tutor-ines"]},
        "steps": ["Open **Settings › Booking page › Page address** and type {slug}.",
                  "Use 3 to 40 lowercase letters, numbers or hyphens, then save.",
                  "Your old address redirects for 30 days, and you can change it again after 30 days."],
    },
    {
        "id": "logo",
        "q": ["How do I put my logo on my booking page?",
              "Can I replace the Slotwise logo with my own?",
              "Where do I upload my company logo?",
              "I want my booking page to match my brand colours and logo."],
        "min_plan": "Starter",
        "gated": upgrade_steps("A custom logo", "is part of the Starter, Pro and Team plans",
                               "Then upload your logo under **Settings › Booking page › Branding**."),
        "steps": lambda ctx: [
            "Open **Settings › Booking page › Branding** and upload a PNG or SVG of up to 2 MB.",
            "Set your accent colour in the same place and save.",
            "To also hide the footer, switch on **Hide Slotwise footer** there."
            if RANK[ctx["plan"]] >= RANK["Pro"]
            else "The \"Powered by Slotwise\" footer can be hidden only on Pro and Team.",
        ],
    },
    {
        "id": "create_event_type",
        "q": ["How do I set up a new {label} that lasts {dur} minutes?",
              "I want to offer a {dur}-minute {label}. How do I create it?",
              "Where do I add another kind of appointment, like a {label} of {dur} minutes?"],
        "slots": {"label": ["consultation", "haircut", "piano lesson", "intro call", "massage", "tax review",
                            "dog grooming", "coaching session"],
                  "dur": ["15", "30", "45", "60", "90"]},
        "steps": steps_create_event_type,
    },
    {
        "id": "buffer",
        "q": ["I need {m} minutes between appointments to get ready. Can Slotwise do that?",
              "How do I add a {m}-minute break after each booking?",
              "Clients keep booking back to back. I want a {m} min gap.",
              "Is there a way to keep {m} minutes free before every meeting for travel?"],
        "slots": {"m": ["10", "15", "20", "30", "45", "60"]},
        "steps": ["Open the event type and go to **Event type › Limits**.",
                  "Set **Buffer after** to {m} minutes, or **Buffer before** if you need the time first.",
                  "Buffers can be up to 120 minutes each and are not shown to invitees."],
    },
    {
        "id": "minimum_notice",
        "q": ["People book me 10 minutes in advance. Can I require {h} hours' notice?",
              "How do I make sure nobody books less than {h} hours ahead?",
              "Can I stop last-minute bookings? I need at least {h} hours' notice."],
        "slots": {"h": ["2", "6", "12", "24", "48"]},
        "steps": ["Open the event type and go to **Event type › Limits › Minimum notice**.",
                  "Set it to {h} hours and save; the default is 4 hours."],
    },
    {
        "id": "daily_limit",
        "q": ["Can I limit myself to {n} sessions a day?",
              "I only want {n} bookings per day for this service.",
              "How do I cap daily appointments at {n}?"],
        "slots": {"n": ["3", "4", "5", "6", "8"]},
        "steps": ["Open the event type and go to **Event type › Limits › Max bookings per day**.",
                  "Enter {n} and save.",
                  "Once {n} bookings are made, the rest of that day shows as unavailable."],
    },
    {
        "id": "booking_window",
        "q": ["Clients can book months ahead. Can I limit it to {d} days?",
              "How far in advance can people book me, and can I change it to {d} days?",
              "I don't want bookings more than {d} days out."],
        "slots": {"d": ["14", "21", "30", "90", "180"]},
        "steps": ["Open the event type and go to **Event type › Limits › Booking window**.",
                  "Set it to {d} days; any value from 1 to 365 works, and the default is 60."],
    },
    {
        "id": "email_reminders",
        "q": ["How do I send clients a reminder {t} before?",
              "Can Slotwise e-mail my invitees {t} before the appointment?",
              "I'd like automatic reminder emails, {t} ahead."],
        "slots": {"t": ["24 hours", "48 hours", "2 hours", "1 hour", "3 days"]},
        "steps": ["Open the event type and go to **Event type › Notifications**.",
                  "Switch on **E-mail reminder** and set it to {t} before the start.",
                  "You can add up to 3 reminders, and each uses the invitee's time zone."],
    },
    {
        "id": "sms_reminders",
        "q": ["Can my clients get text message reminders?",
              "How do I turn on SMS reminders?",
              "Do you send reminders by SMS?",
              "Is it possible to text invitees before their appointment?"],
        "min_plan": "Pro",
        "gated": upgrade_steps("SMS reminders", "are part of the Pro and Team plans",
                               "Then switch on **Event type › Notifications › SMS reminder**."),
        "steps": ["Open the event type and switch on **Event type › Notifications › SMS reminder**.",
                  "Texts go only to invitees who give a mobile number and tick the SMS consent box.",
                  "Your plan includes 300 texts per month, after which reminders continue by e-mail."],
    },
    {
        "id": "reminder_missing",
        "q": ["A client says {pronoun} never got the reminder.",
              "Reminders aren't arriving for some invitees, can you check?",
              "My invitee didn't receive the reminder email yesterday and {pronoun} missed the appointment."],
        "slots": {"pronoun": ["she", "he", "they"]},
        "steps": ["Ask the invitee to check the spam folder for mail from reminders@slotwise.example.",
                  "Open **Bookings › (booking) › Activity** to see whether and when each reminder was sent.",
                  "Bookings made less than 15 minutes before the reminder time get no reminder."],
    },
    {
        "id": "take_payment",
        "q": ["How can clients pay {price} when they book?",
              "I want people to pay upfront for sessions ({price}). Possible?",
              "Can I charge {price} at the time of booking?"],
        "slots": {"price": ["€40", "$75", "£30", "€120", "$25", "CHF 90"]},
        "min_plan": "Pro",
        "gated": upgrade_steps("Payments at booking", "are part of the Pro and Team plans",
                               "Then connect your bank under **Settings › Payments › Connect payout account**."),
        "steps": ["Connect your bank under **Settings › Payments › Connect payout account**.",
                  "Open the event type, switch on **Event type › Payment › Require payment** and enter {price}.",
                  "Bookings are confirmed only after payment, and Slotwise keeps 1.5 % plus the card fee."],
    },
    {
        "id": "refund",
        "q": ["How do I refund a client who paid?",
              "A customer paid twice, can I give one payment back?",
              "How can I give a partial refund of {amount}?"],
        "slots": {"amount": ["€20", "$15", "£10", "half the price"]},
        "steps": ["Open **Bookings**, select the booking and choose **Refund**.",
                  "Enter the full or a partial amount and confirm.",
                  "The money reaches the card in 5 to 10 business days, and refunds work up to 90 days after payment."],
    },
    {
        "id": "payouts",
        "q": ["When do I get paid out?",
              "When will the money from bookings reach my bank account?",
              "Can I get payouts every day instead of weekly?"],
        "steps": ["Payouts reach your bank every Monday for the previous week's payments.",
                  "For daily payouts, change **Settings › Payments › Payout schedule**.",
                  "Your first payout can take up to 7 days while the account is verified."],
    },
    {
        "id": "invitee_reschedule",
        "q": ["How does a client move their appointment to another day?",
              "My customer wants to reschedule. What should I tell {pronoun}?",
              "Can invitees change the time themselves?"],
        "slots": {"pronoun": ["her", "him", "them"]},
        "steps": ["Every confirmation and reminder e-mail has a **Reschedule** link for the invitee.",
                  "They pick a new time on your booking page, and your calendar updates within 2 minutes.",
                  "To move it yourself, choose **⋯ › Propose new time** on the booking."],
    },
    {
        "id": "cancellation_cutoff",
        "q": ["Clients cancel an hour before. Can I block cancellations within {h} hours?",
              "How do I stop people from cancelling less than {h} hours in advance?",
              "I want a {h}-hour cancellation policy. Can Slotwise enforce it?"],
        "slots": {"h": ["12", "24", "48"]},
        "steps": ["Open the event type and go to **Event type › Limits › Cancellation cutoff**.",
                  "Set it to {h} hours and save.",
                  "Inside the cutoff, the e-mail links show your contact details, so invitees must reach you directly."],
    },
    {
        "id": "host_cancel",
        "q": ["I'm sick {day}, how do I cancel my appointments?",
              "How do I cancel a booking from my side?",
              "I have to cancel {day}'s client. How do I let them know?"],
        "slots": {"day": ["today", "tomorrow", "on Friday"]},
        "steps": ["Open **Bookings** and search for the invitee's name or e-mail.",
                  "Choose **⋯ › Cancel booking** and add a reason if you like.",
                  "The invitee receives an e-mail with your reason and a link to book again."],
    },
    {
        "id": "deleted_in_calendar",
        "q": ["I deleted the event in my {cal} but the client still showed up. What happened?",
              "If I remove a booking from my {cal}, is it cancelled?"],
        "slots": {"cal": ["Google calendar", "Outlook", "iPhone calendar"]},
        "steps": ["Deleting the event in your calendar does not cancel the booking, and the invitee is not told.",
                  "Cancel from **Bookings** with **⋯ › Cancel booking** instead.",
                  "The invitee then gets an e-mail with your reason and a link to book again."],
    },
    {
        "id": "wrong_time_zone",
        "q": ["All my bookings show an hour off since I flew back from {place}.",
              "Appointments appear at the wrong time for me after my trip to {place}.",
              "My working hours seem shifted by a few hours. I was in {place} last week."],
        "slots": {"place": ["Lisbon", "New York", "Singapore", "Dubai", "Nairobi", "Mexico City"]},
        "steps": ["Open **Settings › Profile › Time zone** and check that it matches where you are now.",
                  "Your working hours are read in that time zone, so correct it and save.",
                  "If only your calendar app is off, check the time zone in that app's own settings."],
    },
    {
        "id": "lock_time_zone",
        "q": ["My {place} is in person, but tourists see times in their home time zone.",
              "How do I show times in my local time for everyone booking my {place}?",
              "Invitees abroad get confused by the times for my in-person {place} sessions."],
        "slots": {"place": ["salon", "clinic", "studio", "workshop", "practice"]},
        "steps": ["Open the event type and go to **Event type › Location**.",
                  "Switch on **Lock time zone** and save.",
                  "Everyone then sees times in your time zone, with a note saying so."],
    },
    {
        "id": "invite_member",
        "q": ["How do I add my colleague {colleague} to our account?",
              "Can I invite {colleague} to Slotwise?",
              "We hired {colleague}; how do I give them access?"],
        "slots": {"colleague": ["Marta", "Jakob", "Leila", "Tom", "Aisha", "Kenji", "Nora"]},
        "min_plan": "Team",
        "gated": ["Shared accounts for several people are part of the Team plan, and your account is on {plan}.",
                  "Upgrade to Team under **Settings › Billing › Change plan**; it needs at least 2 seats.",
                  "Then invite {colleague} under **Settings › Team › Members**."],
        "steps": ["Open **Settings › Team › Members** and choose **Invite**.",
                  "Enter {colleague}'s e-mail, pick **Member** or **Admin**, and send; invitations last 7 days.",
                  "The new seat is billed from the day the invitation is accepted."],
    },
    {
        "id": "round_robin",
        "q": ["Can bookings be shared out between me and my {n} colleagues?",
              "How do I spread appointments evenly across our {n} therapists?",
              "I want new clients assigned to whichever of our {n} advisers is free."],
        "slots": {"n": ["two", "three", "four", "five"]},
        "min_plan": "Team",
        "gated": upgrade_steps("Round robin events", "are part of the Team plan",
                               "Then create one under **Event types › New event type › Round robin**."),
        "steps": ["Open **Event types › New event type › Round robin**.",
                  "Add the members who should take these bookings.",
                  "Choose **Equal distribution** to balance bookings, or **Priority** to set an order."],
    },
    {
        "id": "upgrade",
        "q": ["How do I upgrade to {target}?",
              "I want to move to the {target} plan. What happens to my bill?",
              "Please switch me to {target}."],
        "slots": {"target": ["Starter", "Pro", "Team"]},
        "valid": lambda ctx: RANK[ctx["target"]] > RANK[ctx["plan"]],
        "steps": steps_upgrade,
    },
    {
        "id": "downgrade",
        "q": ["How do I downgrade to {target}?",
              "I want to go back to {target}; do I lose my event types?",
              "Can I switch to the cheaper {target} plan?"],
        "slots": {"target": ["Free", "Starter", "Pro"]},
        "valid": lambda ctx: RANK[ctx["target"]] < RANK[ctx["plan"]],
        "steps": ["Open **Settings › Billing › Change plan** and pick {target}.",
                  "The change happens at the end of your billing period, and you keep every feature until then.",
                  "Features {target} lacks are switched off, not deleted, and return if you upgrade again."],
    },
    {
        "id": "invoices",
        "q": ["Where can I find my invoices?",
              "I need a PDF invoice for {month} for my accountant.",
              "How do I download past receipts?"],
        "slots": {"month": ["January", "March", "last month", "the last quarter"]},
        "valid": lambda ctx: ctx["plan"] != "Free",
        "steps": ["Open **Settings › Billing › Invoices**.",
                  "Every invoice is listed by date, with a PDF download next to it."],
    },
    {
        "id": "vat_id",
        "q": ["How do I add my VAT number to invoices?",
              "Our company needs the VAT ID on every invoice.",
              "Can you reissue my last invoice with our VAT ID?"],
        "valid": lambda ctx: ctx["plan"] != "Free",
        "steps": ["Add your company name, address and VAT ID under **Settings › Billing › Billing details**.",
                  "It appears on every future invoice, but past invoices cannot be reissued with it.",
                  "With a valid EU VAT ID, you are charged without VAT under reverse charge."],
    },
    {
        "id": "yearly",
        "q": ["Is there a discount if I pay yearly?",
              "How do I switch to annual billing?",
              "Can I pay for a whole year at once?"],
        "valid": lambda ctx: ctx["plan"] != "Free",
        "steps": ["Paying yearly saves 20 % on your {plan} plan.",
                  "Switch under **Settings › Billing › Billing cycle**.",
                  "The yearly price is charged at once, and the unused part of this month is credited."],
    },
    {
        "id": "failed_payment",
        "q": ["My card expired and now I got a payment failed email.",
              "What happens if my payment doesn't go through?",
              "The charge for my subscription was declined. Will I lose my bookings?"],
        "valid": lambda ctx: ctx["plan"] != "Free",
        "steps": ["Update your card under **Settings › Billing › Payment method**.",
                  "We retry after 3, 5 and 7 days and e-mail the account owner each time.",
                  "After the third failed attempt the account moves to Free, but nothing is deleted."],
    },
    {
        "id": "video_links",
        "q": ["How do I add a {svc} link to every booking automatically?",
              "Can Slotwise create {svc} meetings for my calls?",
              "I want each appointment to come with its own {svc} link."],
        "slots": {"svc": ["Zoom", "Google Meet", "Microsoft Teams"]},
        "steps": steps_video,
    },
    {
        "id": "link_failed",
        "q": ["A booking says Link failed. What do I do?",
              "My client got no {svc} link in {pronoun} confirmation."],
        "slots": {"svc": ["Zoom", "Google Meet", "Microsoft Teams"], "pronoun": ["her", "his", "their"]},
        "steps": ["Reconnect the video service under **Settings › Integrations**.",
                  "Then choose **⋯ › Regenerate link** on the booking.",
                  "Changing the event type's location does not update links of bookings already made."],
    },
    {
        "id": "enable_2fa",
        "q": ["How do I turn on two-factor authentication?",
              "I want to secure my account with 2FA.",
              "Where are the 2FA settings?"],
        "steps": ["Open **Settings › Security › Two-factor authentication** and choose **Set up**.",
                  "Scan the QR code with an authenticator app and enter the 6-digit code.",
                  "Save the 10 backup codes somewhere safe, since each one works once."],
    },
    {
        "id": "lost_2fa",
        "q": ["I lost my phone and can't get the 2FA code.",
              "Got a new phone, my authenticator app is gone. How do I log in?",
              "My phone was stolen and Slotwise asks for a 6-digit code."],
        "steps": ["On the sign-in page choose **Use a backup code** and enter one of your codes.",
                  "Then set up 2FA again under **Settings › Security** with your new phone.",
                  "Without a backup code, write to us from your account e-mail; verification takes up to 3 business days."],
    },
    {
        "id": "export_bookings",
        "q": ["How do I export all my bookings to Excel?",
              "Can I download a list of {period}'s appointments?",
              "I need a CSV of bookings with the intake answers."],
        "slots": {"period": ["last year", "last month", "this quarter"]},
        "steps": ["Open **Bookings** and choose **Export**.",
                  "Pick a date range of up to 2 years and the columns you need.",
                  "Choose **Download CSV**; large exports arrive by e-mail as a link valid for 7 days."],
    },
    {
        "id": "delete_account",
        "q": ["How do I delete my Slotwise account?",
              "Please close my account and remove my data.",
              "I'm closing my business. How do I delete everything?"],
        "steps": steps_delete_account,
    },
    {
        "id": "embed",
        "q": ["How do I put the booking calendar on my website?",
              "Can I embed Slotwise in my WordPress site?",
              "I'd like a Book now button on my homepage."],
        "min_plan": "Starter",
        "gated": upgrade_steps("Embedding on your website", "is part of the Starter, Pro and Team plans",
                               "Then open **Booking page › Share › Embed** to get the code."),
        "steps": ["Open **Booking page › Share › Embed** and pick **Inline**, **Pop-up button** or **Pop-up link**.",
                  "Copy the code and paste it into an HTML or custom code block on your page.",
                  "On WordPress, the **Slotwise Booking** plugin does the same without code."],
    },
    {
        "id": "intake_questions",
        "q": ["How can I ask clients for {info} when they book?",
              "I want a required field for {info} on the booking form.",
              "Can the booking form collect {info}?"],
        "slots": {"info": ["their date of birth", "the car registration", "allergies", "their company name",
                           "the pet's breed", "a short description of the problem"]},
        "min_plan": "Starter",
        "gated": upgrade_steps("Intake questions", "are part of the Starter, Pro and Team plans",
                               "Then add the question under **Event type › Booking form**."),
        "steps": ["Open the event type and go to **Event type › Booking form**.",
                  "Choose **Add question**, pick a type and tick **Required** if every invitee must answer.",
                  "You can add up to 10 questions, and answers appear under **Bookings › (booking) › Details**."],
    },
    {
        "id": "no_show",
        "q": ["How do I record that a client didn't show up?",
              "Can I track no-shows?",
              "Is there a report of clients who missed appointments?"],
        "steps": ["After the start time, choose **⋯ › Mark as no-show** on the booking.",
                  "See the totals under **Reports › No-shows**.",
                  "To cut no-shows, add e-mail reminders under **Event type › Notifications**."],
    },
]  # fmt: skip


def answer(intent: dict, ctx: dict, greeting: str) -> str:
    """The assistant's turn for `intent`: greeting, numbered steps, sign-off."""
    gated = "min_plan" in intent and RANK[ctx["plan"]] < RANK[intent["min_plan"]]
    steps = intent["gated"] if gated else intent["steps"]
    steps = steps(ctx) if callable(steps) else steps
    body = "\n".join(f"{i}. {step.format(**ctx)}" for i, step in enumerate(steps, start=1))
    return f"{greeting}\n\n{body}\n\n{SIGN_OFF}"


def question(rng: random.Random, intent: dict, ctx: dict) -> str:
    return rng.choice(intent["q"]).format(**ctx)


def pick_context(rng: random.Random, intent: dict, base: dict) -> dict | None:
    """Slot values for `intent` on top of `base` (name and plan); None when no valid combination was drawn."""
    for _ in range(20):
        ctx = dict(base)
        for name, values in intent.get("slots", {}).items():
            ctx[name] = rng.choice(values)
        if intent.get("valid", lambda _: True)(ctx):
            return ctx
    return None


def decorate(rng: random.Random, text: str, first: str) -> str:
    """Wrap a question the way customers write: optional greeting, thanks, signature, all lowercase."""
    opener, closer = rng.choice(OPENERS), rng.choice(CLOSERS)
    if opener:
        keep_case = text.startswith(("I ", "I'", "Slotwise"))
        text = f"{opener} {text if keep_case else text[0].lower() + text[1:]}"
    if closer:
        text = f"{text} {closer}"
    if rng.random() < 0.2:
        text = f"{text}\n{first}"
    if rng.random() < 0.1:
        text = text.lower()
    return text


def make_example(rng: random.Random) -> dict:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    base = {"first": first, "plan": rng.choices(PLANS, PLAN_WEIGHTS)[0]}
    while True:
        intent = rng.choice(INTENTS)
        ctx = pick_context(rng, intent, base)
        if ctx:
            break
    messages = [
        {"role": "system", "content": SYSTEM.format(first=first, last=last, plan=base["plan"])},
        {"role": "user", "content": decorate(rng, question(rng, intent, ctx), first)},
        {"role": "assistant", "content": answer(intent, ctx, f"Hi {first}!")},
    ]
    if rng.random() < FOLLOW_UP_SHARE:
        while True:
            second = rng.choice(INTENTS)
            ctx2 = pick_context(rng, second, base)
            if second is not intent and ctx2:
                break
        text = question(rng, second, ctx2)
        messages.append(
            {"role": "user", "content": f"{rng.choice(FOLLOW_UP_OPENERS)} {text[0].lower()}{text[1:]}"}
        )
        messages.append({"role": "assistant", "content": answer(second, ctx2, f"Hi again, {first}!")})
    return {"messages": messages}


STEP = re.compile(r"^([1-9])\. (.+)$")
BOLD = re.compile(r"\*\*[^*\n]+\*\*")
MAX_STEP_WORDS = 25


def style_problems(example: dict) -> list[str]:
    """Every way the assistant turns of `example` break the house style (empty: all rules hold)."""
    messages = example["messages"]
    system = messages[0]["content"]
    first = re.search(r"Customer: (\S+) ", system).group(1)
    problems = []
    assistant_turns = [m["content"] for m in messages if m["role"] == "assistant"]
    for turn, content in enumerate(assistant_turns):
        lines = content.split("\n")
        greeting = f"Hi {first}!" if turn == 0 else f"Hi again, {first}!"
        if lines[0] != greeting:
            problems.append(f"turn {turn}: first line is not `{greeting}`")
        if lines[-1] != SIGN_OFF or lines[-2] != "" or lines[1] != "":
            problems.append(f"turn {turn}: no blank line around the steps, or wrong sign-off")
        steps = lines[2:-2]
        if not 1 <= len(steps) <= 3:
            problems.append(f"turn {turn}: {len(steps)} steps")
        for number, line in enumerate(steps, start=1):
            match = STEP.match(line)
            if not match or int(match.group(1)) != number:
                problems.append(f"turn {turn}: step {number} is not numbered `{number}.`")
                continue
            text = match.group(2)
            if not text.endswith(".") or ". " in text or "!" in text or "?" in text:
                problems.append(f"turn {turn}: step {number} is not one plain sentence")
            if len(text.split()) > MAX_STEP_WORDS:
                problems.append(f"turn {turn}: step {number} has {len(text.split())} words")
            if "›" in BOLD.sub("", text):
                problems.append(f"turn {turn}: step {number} has a menu path outside bold")
            if "{" in text or "}" in text:
                problems.append(f"turn {turn}: step {number} has an unfilled placeholder")
        if re.search(r"\bsorry\b|\bapolog", content, re.IGNORECASE):
            problems.append(f"turn {turn}: apologises")
    return problems


def main() -> None:
    rng = random.Random(SEED)
    examples, seen = [], set()
    while len(examples) < N_EXAMPLES:
        example = make_example(rng)
        key = json.dumps(example, sort_keys=True, ensure_ascii=False)
        if key in seen:
            continue
        seen.add(key)
        examples.append(example)
    problems = [f"example {i + 1}: {p}" for i, ex in enumerate(examples) for p in style_problems(ex)]
    if problems:
        raise SystemExit("house style broken:\n" + "\n".join(problems))
    with OUT.open("w", encoding="utf-8", newline="\n") as f:
        for example in examples:
            f.write(json.dumps(example, ensure_ascii=False) + "\n")
    n_turns = sum(len(ex["messages"]) // 2 for ex in examples)
    print(f"wrote {len(examples)} examples ({n_turns} assistant turns) to {OUT}")


if __name__ == "__main__":
    main()
