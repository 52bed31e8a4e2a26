"""Word lists the seeded generators draw from: title words, synopsis phrases, people's names."""

from __future__ import annotations

ADJECTIVES: tuple[str, ...] = (
    "Silent", "Broken", "Crimson", "Hidden", "Last", "Lost", "Midnight", "Golden", "Frozen",
    "Wild", "Burning", "Hollow", "Electric", "Savage", "Quiet", "Dark", "Bright", "Endless",
    "Fallen", "Sacred", "Restless", "Velvet", "Iron", "Glass", "Paper", "Neon", "Distant",
    "Secret", "Wicked", "Gentle", "Lonely", "Scarlet", "Shattered", "Forgotten", "Northern",
    "Southern", "Eternal", "Twisted", "Little", "Perfect", "Infinite", "Final", "First",
    "Bitter", "Sweet", "Deep", "Blue", "Black", "White", "Stolen", "Hungry", "Reckless",
    "Crooked", "Brave", "Curious", "Haunted", "Tiny", "Royal", "Hidden", "Mighty",
)  # fmt: skip

NOUNS: tuple[str, ...] = (
    "River", "Kingdom", "Signal", "Harbor", "Empire", "Garden", "Mirror", "Shadow", "Storm",
    "Horizon", "Frontier", "Orchard", "Station", "Summer", "Winter", "Protocol", "Circuit",
    "Lantern", "Compass", "Island", "Tide", "Crown", "Witness", "Heist", "Detective", "Ghost",
    "Dragon", "Academy", "Hotel", "Diner", "Family", "Season", "Legacy", "Promise", "Echo",
    "Ember", "Harvest", "Archive", "Voyage", "Canyon", "Forest", "Desert", "Ocean", "Moon",
    "Star", "Planet", "Engine", "Machine", "Code", "Cartel", "Court", "Verdict", "Rebellion",
    "Vanguard", "Outpost", "Paradise", "Carnival", "Circus", "Orchestra", "Ballad", "Symphony",
    "Letter", "Map", "Key", "Door", "House", "Castle", "Bridge", "Road", "Train", "Flight",
    "Wolf", "Fox", "Raven", "Tiger", "Falcon", "Whale", "Kitchen", "Chronicle", "Dynasty",
)  # fmt: skip

PLACES: tuple[str, ...] = (
    "Brooklyn", "Lisbon", "Tokyo", "Marseille", "Nairobi", "Oslo", "Havana", "Seoul", "Mumbai",
    "Berlin", "Montreal", "Rio", "Cairo", "Dublin", "Naples", "Kyoto", "Texas", "Alaska",
    "Atlantis", "Mars", "Avalon", "the North", "the Valley", "the Coast", "the Deep", "Eden",
    "Babylon", "Sparta", "Manhattan", "Patagonia", "Sicily", "Bangkok", "Reykjavik", "Memphis",
)  # fmt: skip

FIRST_NAMES: tuple[str, ...] = (
    "Ava", "Liam", "Noah", "Emma", "Olivia", "Mateo", "Sofia", "Lucas", "Mia", "Hiro", "Yuki",
    "Aarav", "Priya", "Ana", "Joao", "Lena", "Jonas", "Chloe", "Louis", "Camille", "Diego",
    "Valentina", "Ethan", "Grace", "Min-jun", "Seo-yeon", "Oscar", "Freya", "Elias", "Maya",
    "Kofi", "Amara", "Isabella", "Leo", "Nora", "Arjun", "Ananya", "Hannah", "Felix", "Clara",
    "Marco", "Giulia", "Sven", "Astrid", "Tom", "Ruby", "Zoe", "Sam", "Alex", "Jordan",
)  # fmt: skip

LAST_NAMES: tuple[str, ...] = (
    "Smith", "Garcia", "Muller", "Martin", "Rossi", "Silva", "Tanaka", "Kim", "Patel", "Singh",
    "Johnson", "Brown", "Lopez", "Dubois", "Schmidt", "Fischer", "Santos", "Oliveira",
    "Suzuki", "Sato", "Park", "Lee", "Sharma", "Gupta", "Williams", "Jones", "Taylor",
    "Andersson", "Nilsen", "de Vries", "Bianchi", "Moreau", "Hernandez", "Nguyen", "Okafor",
    "Mensah", "Cohen", "Novak", "Kowalski", "O'Brien", "Murphy", "Walsh", "Costa", "Ferreira",
)  # fmt: skip

#: Who a synopsis is about.
ROLES: tuple[str, ...] = (
    "a disgraced detective", "two estranged sisters", "a reluctant heir", "a young engineer",
    "a retired spy", "an ambitious chef", "a small-town teacher", "a teenage hacker",
    "a grieving widower", "a band of misfits", "a rookie pilot", "an exiled prince",
    "a struggling comedian", "a marine biologist", "a charming con artist",
    "a pair of rival magicians", "a weary sheriff", "an orphaned robot", "a tireless nurse",
    "a forgotten pop star", "three childhood friends", "a stubborn farmer", "a talking fox",
    "an overworked lawyer", "a curious girl", "a mercenary with a conscience",
)  # fmt: skip

#: What they set out to do; ``{place}`` and ``{thing}`` are filled in.
MISSIONS: tuple[str, ...] = (
    "returns to {place} to uncover the truth behind {thing}",
    "travels to {place} to find {thing}",
    "must protect {thing} from a ruthless rival",
    "sets out across {place} to win back {thing}",
    "is drawn into a conspiracy surrounding {thing}",
    "risks everything to expose {thing}",
    "races against time to recover {thing}",
    "inherits {thing} and a family feud in {place}",
    "stumbles onto {thing} hidden beneath {place}",
    "joins an unlikely crew hunting for {thing}",
)  # fmt: skip

#: The object of the mission; ``{noun}`` is a lower-case noun.
THINGS: tuple[str, ...] = (
    "a vanished {noun}", "the family {noun}", "an ancient {noun}", "a stolen {noun}",
    "the last {noun}", "a cursed {noun}", "a secret {noun}", "the legendary {noun}",
)  # fmt: skip

#: Optional second sentences of a synopsis.
CODAS: tuple[str, ...] = (
    "Nothing is what it seems.",
    "Some secrets refuse to stay buried.",
    "Based on a true story.",
    "Friendship will be tested like never before.",
    "The past is closer than they think.",
    "Laughter, heartbreak and one very stubborn goat.",
    "Every choice has a price.",
    "{place} will never be the same.",
    "A story about courage, family and second chances.",
    "Trust no one.",
)  # fmt: skip

#: Title patterns; fields are filled from the lists above.
TITLE_PATTERNS: tuple[str, ...] = (
    "The {adj} {noun}",
    "{adj} {noun}",
    "{noun} of {place}",
    "The {noun} of {place}",
    "{first}'s {noun}",
    "{place} {noun}",
    "{noun} & {noun2}",
    "{adj} in {place}",
    "Return to {place}",
    "{noun}: {adj} {noun2}",
    "The {noun} Files",
    "Beyond the {adj} {noun}",
)  # fmt: skip

#: Words too common to index or search for.
STOPWORDS: frozenset[str] = frozenset(
    {"the", "of", "a", "an", "and", "in", "to", "s", "on", "for", "at", "by"}
)
