"""Street-type words across the languages of Latin-script postal addresses.

No offline parser fits: libpostal needs a C library and a 2 GB model,
usaddress and pyap know US (and UK/CA) shapes only, and Faker's address
providers mix street types with street names (``street_prefixes`` of fi_FI
are name stems).  These lists are the street types of those providers and of
the postal conventions of Europe and the Americas, grouped by where the word
stands, because that decides where the house number goes.
"""

from __future__ import annotations

__all__ = ["COMPOUND_ENDINGS", "PREFIX_WORDS", "SUFFIX_WORDS", "UNIT_WORDS"]


def _words(text: str) -> list[str]:
    """Regex fragments (lower case, dots escaped) written as one readable string."""
    return text.split()


# A separate word after the street's name, the number after it ("Trenerys gate 232",
# "Rákóczi út 66", "Villacher Strasse 89").  English ones stand here too for writers
# who put the number last; "st" is left out (Saint).
SUFFIX_WORDS = _words(
    "straße strasse str\\. gasse weg allee platz ring damm ufer chaussee "
    "gate gata gatan gaten vei veien veg vegen vej gade väg vägen gränd stræde plads "
    "katu tie kuja polku väylä bulevardi "
    "utca u\\. út útja tér köz körút sétány rakpart fasor "
    "straat laan plein gracht kade dreef singel steeg "
    "ulica ulice ulita třída náměstí nábřeží cesta "
    "tee tänav mnt\\. iela gatvė sokak soka\u011f\u0131 caddesi cad\\. bulvar\u0131 "
    "street road avenue lane boulevard drive"
)

# A word before the street's name: the number follows the name ("Via Roma 131",
# "ul. Słowicza 10") or comes first ("31 Rue Al Imam Al Bakri").  Abbreviations
# keep their dot so that a bare "Al" or "Pl" is not taken for one.
PREFIX_WORDS = _words(
    "via viale vicolo piazza piazzale corso largo strada contrada borgo lungomare "
    "rue avenue boulevard bd\\. chemin allée impasse quai place route cours "
    "calle avenida avda\\. av\\. camino paseo plaza carretera callejón pasaje rambla ronda "
    "travesía glorieta carrera "
    "rua travessa praça alameda estrada rodovia largo "
    "ul\\. ulica al\\. aleja pl\\. plac os\\. osiedle "
    "strada str\\. bulevardul calea aleea piața șoseaua intrarea "
    "jalan jl\\."
)

# Endings glued to the street's name ("Snellmaninkatu 55", "Hammarvägen 15",
# "Bahnhofstraße 3").  "gate" is left out: English words end with it.
COMPOUND_ENDINGS = _words(
    "straße strasse gasse weg allee platz damm ufer "
    "gatan gata gaten vägen väg gränd stigen veien vegen vei vej gade stræde stræti vegur braut "
    "katu tie kuja polku väylä kaari rinne ranta "
    "utca útja "
    "straat laan plein gracht kade dreef singel steeg"
)

# What follows a street line: flat, floor, box (several languages).
UNIT_WORDS = _words(
    "apt apartment unit suite ste flat fl floor room rm box bldg building lot "
    "piso puerta depto dpto app appt lgh whg wohnung étage door"
)
