"""The one rule on collections: who may read a collection and who may change it. A collection's
grant is stored in its own index (state kind "access"), so it travels with `reindex` and
`migrate`. A collection without a grant (made before identity was turned on) is for admins only."""

from __future__ import annotations

from dataclasses import dataclass

from docstack.access.identity import Principal

STATE_KIND = "access"
STATE_KEY = "grant"


@dataclass(frozen=True)
class Grant:
    owner: str | None = None
    read_teams: frozenset[str] = frozenset()
    write_teams: frozenset[str] = frozenset()
    read_roles: frozenset[str] = frozenset()
    write_roles: frozenset[str] = frozenset()

    def can_write(self, principal: Principal) -> bool:
        return (principal.is_admin or (self.owner is not None and principal.user == self.owner)
                or bool(principal.teams & self.write_teams) or bool(principal.roles & self.write_roles))

    def can_read(self, principal: Principal) -> bool:
        return (self.can_write(principal) or bool(principal.teams & self.read_teams)
                or bool(principal.roles & self.read_roles))

    def to_json(self) -> dict:
        return {"owner": self.owner, "read_teams": sorted(self.read_teams), "write_teams": sorted(self.write_teams),
                "read_roles": sorted(self.read_roles), "write_roles": sorted(self.write_roles)}

    @classmethod
    def from_json(cls, data: dict | None) -> Grant:
        data = data or {}
        return cls(data.get("owner"), *(frozenset(data.get(k) or ()) for k in
                                        ("read_teams", "write_teams", "read_roles", "write_roles")))


ADMINS_ONLY = Grant()
