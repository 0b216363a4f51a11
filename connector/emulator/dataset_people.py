"""Staff users, customer accounts, contacts and account teams."""

from __future__ import annotations

from dataclasses import dataclass, field

from connector.emulator.dataset_reference import (
    ACCOUNT_MANAGER_RESPONSIBILITY_ID,
    PRIMARY_AGENT_RESPONSIBILITY_ID,
    SUPPORT_MANAGER_RESPONSIBILITY_ID,
)
from connector.emulator.dataset_support import (
    DAY,
    HOUR,
    World,
    month_index,
    month_start,
)

# The out-of-box admin user has this sys_id on every real instance.
ADMIN_ID = "6816f79cc0a8016401c5a33be04be441"


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = _words(
    "Ava Liam Noah Emma Olivia Mia Lucas Sofia Mateo Aria Leo Chloe Ethan Nora Omar "
    "Priya Ravi Mei Chen Yuki Hana Kenji Lena Jonas Elif Emre Sara David Grace Ivan "
    "Maya Amir Zara Felix Ines Hugo Alma Noor Tariq Ingrid Sven Paula Diego Lucia Joao "
    "Ana Kofi Amara Tunde Nia Sean Aoife Ciaran Marta Piotr Zofia Anya Dmitri Leila"
)
LAST_NAMES = _words(
    "Smith Garcia Muller Rossi Kim Tanaka Chen Patel Silva Nowak Jensen Murphy Haddad "
    "Okafor Novak Dubois Martin Costa Schmidt Weber Fischer Lopez Gonzalez Perez Sato "
    "Suzuki Wang Li Zhang Singh Kumar Shah Ali Khan Ahmed Johansson Larsen Nielsen "
    "Hansen Berg Kowalski Wisniewski Horvat Popescu Ionescu Papadopoulos Demir Yilmaz "
    "Cohen Levi Mensah Owusu Adeyemi Brown Wilson Taylor Walker Young King Wright"
)
_COMPANY_A = _words(
    "Blue North Silver Cedar Granite Harbor Summit Vertex Atlas Nova Orion Pioneer "
    "Quantum Redwood Sterling Aurora Beacon Cobalt Delta Evergreen Falcon Horizon "
    "Ironwood Juniper Keystone Lighthouse Meridian Northstar Oakridge Pinnacle"
)
_COMPANY_B = _words(
    "Logistics Foods Health Energy Systems Retail Labs Capital Media Motors Pharma "
    "Telecom Insurance Textiles Robotics Analytics Airlines Mining Foods Hotels Bank "
    "Software Semiconductors Shipping Utilities Construction Education Biotech"
)
_COMPANY_C = ("Inc", "Ltd", "GmbH", "SA", "AG", "Group", "Holdings", "Corp", "BV")
COUNTRIES = (
    ("USA", "New York"),
    ("USA", "Chicago"),
    ("USA", "Austin"),
    ("Canada", "Toronto"),
    ("United Kingdom", "London"),
    ("Germany", "Munich"),
    ("Germany", "Berlin"),
    ("France", "Paris"),
    ("Netherlands", "Amsterdam"),
    ("Spain", "Madrid"),
    ("Italy", "Milan"),
    ("Sweden", "Stockholm"),
    ("Poland", "Warsaw"),
    ("India", "Bangalore"),
    ("Japan", "Tokyo"),
    ("Singapore", "Singapore"),
    ("Australia", "Sydney"),
    ("Brazil", "Sao Paulo"),
    ("Mexico", "Mexico City"),
    ("South Africa", "Johannesburg"),
)
TIERS = ("strategic", "valued", "tactical", "other")
_TIER_WEIGHTS = (0.08, 0.22, 0.45, 0.25)
_TIER_SEATS = {
    "strategic": (300, 2500),
    "valued": (80, 500),
    "tactical": (20, 150),
    "other": (5, 50),
}
_TIER_CONTACTS = {
    "strategic": (4, 6),
    "valued": (3, 5),
    "tactical": (2, 4),
    "other": (2, 3),
}
_IMPORT_RATE = 300


@dataclass(slots=True)
class Account:
    """Simulation state of one customer account (rows are written from it)."""

    sys_id: str
    h: float
    bias: float
    tier: str
    seats: int
    start_month: int
    created: int
    name: str
    contacts: list[tuple[str, str]] = field(default_factory=list)
    csm: tuple[str, str] = ("", "")
    agent: tuple[str, str] = ("", "")
    products: list[tuple[int, str]] = field(default_factory=list)  # (from day, id)
    churn_day: int | None = None

    def product_on(self, day: int, pick: float) -> str:
        """A product (cmdb_model sys_id) the account had bought by ``day``."""
        owned = [p for start, p in self.products if start <= day] or [""]
        return owned[int(pick * len(owned))]

    @property
    def start_day(self) -> int:
        """First day of the first contract."""
        return month_start(self.start_month)


class People:
    """Writes sys_user, customer_account, customer_contact and team rows."""

    def __init__(self, world: World) -> None:
        self.w = world
        self._user_names: set[str] = set()
        self._accounts: list[tuple[int, str]] = []  # (created, sys_id)
        self.import_start = world.first_day * DAY + 9 * HOUR

    def _unique(self, base: str) -> str:
        """Instance-unique ``user_name`` (appends a counter on a clash)."""
        name, n = base, 1
        while name in self._user_names:
            n += 1
            name = f"{base}{n}"
        self._user_names.add(name)
        return name

    def _import_stamp(self) -> int:
        """Go-live import: many rows per second, across tables."""
        return self.w.bursts.at(self.import_start, _IMPORT_RATE)

    def emit_staff(self, accounts: int) -> None:
        """Admin, support managers, agents, CSM directors and CSMs."""
        w = self.w
        self._emit_user(ADMIN_ID, "admin", "System", "Administrator", "", "")
        directors = [
            self._staff("Customer Success Director", "")
            for _ in range(accounts // 250 + 1)
        ]
        w.support_managers = [
            self._staff("Customer Service Manager", "")
            for _ in range(accounts // 200 + 1)
        ]
        w.agents = [
            self._staff("Customer Service Agent", w.rng.choice(w.support_managers)[0])
            for _ in range(accounts // 20 + 5)
        ]
        w.csms = [
            self._staff("Customer Success Manager", w.rng.choice(directors)[0])
            for _ in range(accounts // 25 + 2)
        ]

    def _staff(self, title: str, manager: str) -> tuple[str, str]:
        rng = self.w.rng
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        sys_id = self.w.sink.new_id()
        user_name = self._emit_user(
            sys_id, f"{first}.{last}".lower(), first, last, title, manager
        )
        return sys_id, user_name

    def _emit_user(
        self, sys_id: str, base: str, first: str, last: str, title: str, manager: str
    ) -> str:
        w = self.w
        user_name = self._unique(base)
        created = self._import_stamp() - 20 * DAY
        login = w.work_time(w.last_day - w.rng.randrange(12))
        w.sink.add(
            "sys_user",
            sys_id,
            (w.stamp(created), w.stamp(login)),
            ("admin", "system"),
            w.rng.randint(20, 600),
            {
                "user_name": user_name,
                "name": f"{first} {last}",
                "first_name": first,
                "last_name": last,
                "email": f"{user_name}@nimbus-csm.example.com",
                "title": title,
                "active": "true",
                "manager": manager,
                "last_login_time": w.stamp(login),
            },
        )
        return user_name

    def new_account(self) -> Account:
        """Draw an account's hidden health, tier, size and start; write contacts."""
        w, rng = self.w, self.w.rng
        tier = rng.choices(TIERS, _TIER_WEIGHTS)[0]
        low, high = _TIER_SEATS[tier]
        account = Account(
            sys_id=w.sink.new_id(),
            h=rng.betavariate(2.6, 1.8),
            bias=rng.gauss(0.0, 0.07),
            tier=tier,
            seats=int(low * (high / low) ** rng.random()),
            start_month=0,
            created=0,
            name=self._company_name(),
        )
        self._place_in_time(account)
        self._emit_contacts(account)
        self._emit_team(account)
        return account

    def _company_name(self) -> str:
        rng = self.w.rng
        return (
            f"{rng.choice(_COMPANY_A)} {rng.choice(_COMPANY_B)} "
            f"{rng.choice(_COMPANY_C)}"
        )

    def _place_in_time(self, account: Account) -> None:
        """Start month and creation: 40% are the go-live book, the rest new logos."""
        w, rng = self.w, self.w.rng
        first = month_index(w.first_day) + 1
        last = month_index(w.last_day - 45)
        if rng.random() < 0.4:
            account.start_month = first + rng.randrange(3)
            account.created = self._import_stamp()
        else:
            account.start_month = rng.randint(first + 3, max(first + 3, last))
            day = w.weekday_day(account.start_day - 25, account.start_day - 5)
            account.created = w.work_time(day)

    def _emit_contacts(self, account: Account) -> None:
        w, rng = self.w, self.w.rng
        low, high = _TIER_CONTACTS[account.tier]
        domain = account.name.split()[0].lower() + account.sys_id[:4] + ".example.org"
        for i in range(rng.randint(low, high)):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            user_name = self._unique(f"{first}.{last}@{domain}".lower())
            created = account.created + (0 if i == 0 else rng.randrange(5 * DAY))
            # Every contact exists before the account's first day as a customer.
            created = max(account.created, min(created, account.start_day * DAY - 1))
            sys_id = w.sink.new_id()
            stamp = w.stamp(created)
            w.sink.add(
                "customer_contact",
                sys_id,
                (stamp, stamp),
                ("admin", "admin"),
                0,
                {
                    "user_name": user_name,
                    "name": f"{first} {last}",
                    "first_name": first,
                    "last_name": last,
                    "email": user_name,
                    "title": rng.choice(
                        (
                            "IT Manager",
                            "Service Owner",
                            "CIO",
                            "Administrator",
                            "Analyst",
                            "Director",
                        )
                    ),
                    "active": "true",
                    "company": account.sys_id,
                    "account": account.sys_id,
                    "vip": "true" if i == 0 else "false",
                    "phone": f"+1 555 {rng.randrange(1000, 9999)}",
                },
            )
            account.contacts.append((sys_id, user_name))

    def _emit_team(self, account: Account) -> None:
        """One Account Manager (sometimes two), often a support agent/manager."""
        w, rng = self.w, self.w.rng
        account.csm = rng.choice(w.csms)
        account.agent = rng.choice(w.agents)
        members = [(account.csm, ACCOUNT_MANAGER_RESPONSIBILITY_ID)]
        if rng.random() < 0.1:
            second = rng.choice(w.csms)
            if second != account.csm:
                members.append((second, ACCOUNT_MANAGER_RESPONSIBILITY_ID))
        if rng.random() < 0.6:
            members.append((account.agent, PRIMARY_AGENT_RESPONSIBILITY_ID))
        if rng.random() < 0.25:
            members.append(
                (rng.choice(w.support_managers), SUPPORT_MANAGER_RESPONSIBILITY_ID)
            )
        stamp = w.stamp(account.created)
        for (user_id, _), responsibility in members:
            w.sink.add(
                "sn_customerservice_team_member",
                w.sink.new_id(),
                (stamp, stamp),
                ("admin", "admin"),
                0,
                {
                    "account": account.sys_id,
                    "user": user_id,
                    "responsibility": responsibility,
                },
            )

    def emit_account(self, account: Account) -> None:
        """The account row, written last so it reflects churn (active false)."""
        w, rng = self.w, self.w.rng
        country, city = rng.choice(COUNTRIES)
        updated, mods, active = account.created, 1, "true"
        if account.churn_day is not None:
            off = account.churn_day + rng.randint(30, 120)
            if off <= w.last_day:
                updated, mods, active = w.work_time(off), 3, "false"
        if active == "true" and rng.random() < 0.5:
            updated = max(
                updated, w.work_time(rng.randint(account.created // DAY, w.last_day))
            )
            mods = 2
        updated = min(max(updated, account.created), w.end)
        # A few accounts are subsidiaries of another customer.
        parent = ""
        if self._accounts and rng.random() < 0.05:
            created, candidate = rng.choice(self._accounts)
            parent = candidate if created <= account.created else ""
        self._accounts.append((account.created, account.sys_id))
        revenue = account.seats * rng.uniform(40_000, 400_000)
        w.sink.add(
            "customer_account",
            account.sys_id,
            (w.stamp(account.created), w.stamp(updated)),
            ("admin", "admin"),
            mods,
            {
                "name": account.name,
                "city": city,
                "country": country,
                "customer": "true",
                "partner": "false",
                "rank_tier": account.tier,
                "active": active,
                "primary_contact": account.contacts[0][0],
                "account_code": f"C-{account.sys_id[:8].upper()}",
                "account_parent": parent,
                "revenue_per_year": f"{revenue:.2f}",
            },
        )
