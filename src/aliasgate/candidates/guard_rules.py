"""A small, documented rule set that flags harmful *requests* (the guard's input filter).

Independent of the ``refusal`` scorer on purpose (it classifies requests, not responses, and
shares no code with the scorers), so a guarded candidate is not graded by its own rules.

How a request is judged (:func:`flag_request`):

1. **Normalise**: lower-case, straight apostrophes, single spaces; harmless compounds that contain
   a trigger word are neutralised first ("bath bomb", "glue gun", "high score"...).
2. **Signals** computed once per request:

   - *intent*: the request asks for a way to act ("how do I", "best way to", "where can I",
     "help me", "write a", an imperative first word...). Rules marked ``needs_intent`` only fire
     with it, so "What is money laundering?" or "Why did X attack Y?" pass.
   - *game* / *fiction* context ("in Minecraft", "in Call of Duty", "in my novel"), cancelled by
     "in real life"; *defensive* framing ("protect against", "signs of", "what should I do if"),
     cancelled by evasion cues ("without getting caught"); *own* property ("my own", "my
     forgotten password").

3. **Rules**: each has a category, a pattern of a harmful act *on a harmful target* (a person, a
   private individual's data, a real weapon, an illegal drug...), whether it needs intent, and
   which contexts cancel it. The first rule that fires gives the :class:`Flag`.

Categories: violence, weapons, self_harm, illegal_drugs, fraud, hate, privacy, malware
(no sexual-content rules: out of scope of our dataset). Keyword rules are easy to evade by
rephrasing and do misfire on unusual phrasings; they are a baseline mitigation, measured on our
``datasets/safety_prompts.jsonl`` and on the public XSTest prompts by ``tests/test_guard.py``.
:data:`RULESET_DIGEST` changes whenever a pattern does, and is part of a guarded candidate's
fingerprint, so cached responses never outlive a rule change.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = ["RULES", "RULESET_DIGEST", "Flag", "Rule", "flag_request", "normalise"]


@dataclass(frozen=True)
class Flag:
    """Why a request was flagged.

    Attributes:
        category: Harm category (``violence``...).
        rule: Name of the rule that fired.
        match: The matched text (normalised, at most 80 characters).
    """

    category: str
    rule: str
    match: str


@dataclass(frozen=True)
class Rule:
    """One harmful-request pattern.

    Attributes:
        name: Rule id (``violence.kill_person``...).
        category: Harm category.
        pattern: Regex source, matched against the normalised request.
        needs_intent: Fires only when the request asks for a way to act.
        cancelled_by: Contexts that cancel it (``game``, ``fiction``, ``defensive``, ``own``).
    """

    name: str
    category: str
    pattern: str
    needs_intent: bool = True
    cancelled_by: tuple[str, ...] = ("defensive",)


# --------------------------------------------------------------------------- vocabulary

_GAP = r"[^.?!]{0,40}?"  # a short stretch inside one sentence
_PEOPLE = (
    r"(?:someone|somebody|anyone|a person|people|persons|humans?|him|them|"
    r"(?:a|an|the|this|that|my|our|his|her|their)\s+(?:\w+\s+)?(?:man|woman|men|women|child|children|"
    r"kid|kids|baby|boy|girl|guy|person|people|human|cop|cops|police officers?|guard|"
    r"security guard|teacher|stranger|homeless person|businessman|neighbou?rs?|wife|husband|"
    r"girlfriend|boyfriend|partner|ex|ex-wife|ex-husband|boss|coworkers?|co-workers?|colleagues?|"
    r"classmates?|roommates?|family|sister|brother|mother|father|mom|dad|son|daughter|friend|"
    r"rival|enemy|bully|landlord|tenant|victim|witness|president|politician|journalist|"
    r"crowd|toddler|infant|date|tinder date|match|relatives|whole family|entire family|village|"
    r"town|city|population|group of people|students|pupils|hostages?)|my ex|"
    r"(?:someone|somebody|a human|a person|a child|a kid|a baby|a toddler|a woman|a man|"
    r"(?:my|his|her|their) \w+)'s\s+(?:\w+\s+)?(?:head|skull|neck|legs?|arms?|throat|face|"
    r"sternum|ribs|spine|body|life|heart|eyes?|teeth|fingers?|wife|husband|child|kid|family)|"
    r"(?:a|the)\s+(?:jew|muslim|black|gay|immigrant)s?)"
)
_ANIMALS = r"(?:(?:the\s+|my\s+|a\s+|stray\s+|neighbou?r'?s\s+)*(?:cats?|dogs?|puppy|kittens?|pets?|horses?))"
_HARM_VERBS = (
    r"(?:kill|murder|stab|strangl|chok|poison|shoot|behead|execut|tortur|kidnap|abduct|maim|"
    r"beat up|beat|hurt|injur|assault|attack|drown|suffocat|smother|slaughter|butcher|"
    r"run over|gut|take down|take out|knock out|overpower|eliminat|dismember|hang|lynch|"
    r"burn|bludgeon|crippl|shank|terminat|liquidat|captur|crush|hit|punch|slap|kick|rip|"
    r"cut off|break|smash|hammer|push|tackl|eradicat|wipe out|annihilat|exterminat|decimat|"
    r"destroy|obliterat|massacr|take (?:\S+ ){0,3}hostage|hold (?:\S+ ){0,3}hostage|set fire to|"
    r"throttl|sever|disembowel|decapitat|mutilat|stomp|headbutt)"
)
_GROUPS = (
    r"(?:muslims?|jews|jewish people|christians|hindus|sikhs|buddhists|atheists|black people|"
    r"blacks|white people|asians|asian people|latinos|latinas|hispanics|mexicans|arabs|africans|"
    r"indians|chinese people|immigrants|refugees|migrants|gay people|gays|gay men|lesbians|"
    r"bisexuals?|trans(?:gender)? people|trans women|trans men|queer people|lgbtq?\+?(?: people)?|"
    r"women|girls|men|disabled people|the disabled|people with disabilities|autistic people|"
    r"roma(?: people)?|gypsies|native americans|indigenous people|the elderly|elderly people|"
    r"old people|poor people|homeless people|(?:black|white|brown|asian) (?:men|women|people))"
)
_DISCR = (
    r"(?:(?:should|shouldn't|should not|must|mustn't|ought)\s+(?:not\s+|never\s+)?(?:be\s+)?"
    r"(?:allowed|permitted|able)\s+to|(?:be|get|are|being)\s+(?:banned|barred|excluded|deported|"
    r"expelled|removed|exterminated|eliminated|segregated|locked up|sterili[sz]ed)|"
    r"(?:don't|do not|doesn't|does not) deserve|lose their rights|"
    r"(?:are|is|being)\s+(?:all\s+)?(?:inferior|subhuman|stupid|dumb|lazy|criminals|animals|vermin|"
    r"dangerous|mentally ill|a burden|worse|evil|disgusting|a disease|parasites|less intelligent|"
    r"too stupid|too weak|too emotional)|too stupid|inferior to|subhuman|vermin)"
)
_NORMATIVE = (
    r"(?:be\s+)?(?:allowed|permitted|given|denied|banned|barred|excluded|forced|subjected|treated|"
    r"paid less|earn less|have (?:access|equal|the same|fewer|less|no|rights)|go through|undergo|"
    r"lose|have their|be kept|be watched|be monitored|not have|not be)"
)
_PRIVATE = (
    r"(?:(?:my|our)\s+(?:new\s+|old\s+|former\s+)?(?:ex|ex-?(?:wife|husband|girlfriend|boyfriend|"
    r"partner)|wife|husband|girlfriend|boyfriend|partner|neighbou?rs?|coworkers?|co-workers?|"
    r"colleagues?|boss|manager|employees?|employer|landlord|tenants?|roommates?|flatmates?|"
    r"classmates?|teachers?|students?|cleaner|nanny|babysitter|therapist|crush|date|sister|"
    r"brother|mother|father|mom|dad|cousin|aunt|uncle|in-laws?|patient|customer|client|"
    r"friend|friends)|(?:a|the|this|that)\s+(?:journalist|streamer|youtuber|reporter|stranger|"
    r"girl|guy|woman|man|user|blogger|critic|nurse|cashier|waitress|waiter|coworker|"
    r"neighbou?r|classmate|ex))"
)
_PII = (
    r"(?:home address|new address|address|where (?:she|he|they) li(?:ves?|ve)|phone number|"
    r"mobile number|cell number|e-?mail(?: address| account| password)?|password|passwords|"
    r"social security number|ssn|national insurance number|date of birth|birthday|"
    r"bank (?:account|details)|account (?:number|details)|credit card|medical records?|"
    r"medical history|health records|criminal record|location|whereabouts|texts|text messages|"
    r"messages|dms|private photos|photos|browsing history|salary|ip address|licen[cs]e plate|"
    r"passport number|(?:mental )?health history|immigration status|marital status|"
    r"sexual orientation|birth certificate|driver'?s licen[cs]e(?: number)?|net worth|income|"
    r"criminal history|employment history|medical condition|diagnosis|hiv status|"
    r"credit score|religion|political views)"
)
_DRUGS = (
    r"(?:meth|methamphetamine|crystal meth|crack(?: cocaine)?|cocaine|coke|heroin|fentanyl|lsd|"
    r"mdma|ecstasy|molly|dmt|ghb|pcp|ketamine|opium|morphine|amphetamines?|narcotics|drugs|"
    r"weed|cannabis|marijuana|marihuana|pot|opioids|oxy(?:contin|codone)?|xanax|adderall|painkillers|"
    r"prescription (?:drugs|opioids|pills|medication)|pills|shrooms|magic mushrooms|date rape drugs?)"
)
_WEAPONS = (
    r"(?:bombs?|pipe bombs?|explosives|(?<=an )explosive|explosive (?:devices?|charges?|vests?)|"
    r"ieds?|improvised explosive devices?|"
    r"grenades?|molotov(?: cocktails?)?|napalm|thermite|nerve (?:agents?|gas)|sarin|vx|ricin|"
    r"anthrax|mustard gas|chlorine gas|toxic gas|poison(?:ous)? gas|bioweapons?|biological weapons?|"
    r"chemical weapons?|dirty bombs?|nuclear (?:weapons?|bombs?)|atomic bombs?|ghost guns?|"
    r"untraceable (?:guns?|firearms?)|silencers?|suppressors?|zip guns?|machine guns?|guns?|"
    r"firearms?|landmines?|detonators?|weapons? of mass destruction)"
)
_MALWARE = (
    r"(?:ransomware|keyloggers?|malware|viruse?s?|computer virus|trojans?|worms?|botnets?|"
    r"rootkits?|spyware|stalkerware|backdoors?|remote access trojans?|rats?|credential stealers?|"
    r"password stealers?|info-?stealers?|cryptojackers?|exploit kits?|ddos (?:tools?|scripts?|"
    r"attacks?)|zero-day exploits?|logic bombs?|phishing kits?)"
)

RULES: tuple[Rule, ...] = (
    # -- violence --------------------------------------------------------------------------------
    Rule("violence.harm_person", "violence", rf"\b{_HARM_VERBS}\w*\b{_GAP}\b{_PEOPLE}\b",
         cancelled_by=("game", "fiction", "defensive")),
    Rule("violence.harm_animal", "violence",
         rf"\b(?:kill|poison|hurt|torture|drown|shoot|beat|starve)\w*\s+{_ANIMALS}\b",
         cancelled_by=("game", "fiction", "defensive")),
    Rule("violence.dead_body", "violence",
         r"\b(?:dispose of|get rid of|hide|bury|dissolve)\b[^.?!]{0,25}?\b(?:(?:dead\s+)?(?:body|"
         r"bodies|corpse)|dead (?:\w+\s+)?(?:baby|person|man|woman|child|husband|wife|victim))\b",
         needs_intent=False, cancelled_by=("game", "fiction")),
    Rule("violence.attack_plan", "violence",
         r"\b(?:plan|carry out|commit|organi[sz]e)\b[^.?!]{0,30}?\b(?:an? )?(?:attack|massacre|"
         r"mass shooting|school shooting|terror(?:ist)? attack|stabbing spree)\b|\battack people\b",
         cancelled_by=("game", "fiction")),
    Rule("violence.commit_crime", "violence",
         r"\bcommit\w*\b[^.?!]{0,20}?\b(?:an? )?(?:murder|homicide|(?:violent )?assault|"
         r"manslaughter|arson|massacre|genocide|terrorism|terror attack|treason|(?:violent )?crimes?|"
         r"kidnapping|robbery|burglary|hate crimes?|war crimes?|atrocit\w*)\b",
         cancelled_by=("game", "fiction", "defensive")),
    Rule("violence.plan", "violence",
         r"\bplan\w*\b[^.?!]{0,20}?\b(?:an? |another |the )?(?:assassination|murder|kidnapping|"
         r"hijacking|robbery|heist|bombing|massacre|shooting|death)\b",
         cancelled_by=("game", "fiction")),
    Rule("violence.arson", "violence",
         r"\bset\b[^.?!]{0,30}?\b(?:school|building|car|bus|house|home|church|mosque|synagogue|"
         r"temple|hospital|station|office|shop|store|someone|him|her|them|person)\b[^.?!]{0,10}?"
         r"\bon fire\b|\bburn\w* down\b", cancelled_by=("game", "fiction", "defensive")),
    Rule("violence.destroy_place", "violence",
         r"\b(?:bomb\w*|obliterat\w*|annihilat\w*|wipe out|destroy\w*|level|raze|nuke|gas)\b"
         r"[^.?!]{0,20}?\b(?:an? |the |our |their )?(?:entire |whole )?(?:city|town|village|country|"
         r"population|neighbou?rhood|army base|military base|base|school|hospital|church|mosque|"
         r"synagogue|embassy|airport|stadium|building)\b", cancelled_by=("game", "fiction")),
    Rule("violence.property", "violence",
         r"\b(?:destroy|wreck|vandali[sz]|smash|slash|sabotag|ruin)\w*\b[^.?!]{0,20}?\b(?:my \w+'s|"
         r"someone's|someone else's|his|her|their|a neighbou?r's)\s+(?:\w+\s+)?(?:car|house|home|"
         r"property|tires|tyres|life|business|reputation|career|marriage)\b|\bmake\b[^.?!]{0,20}?"
         r"\b(?:car|house|building|phone|bus|plane)\s+explode\b",
         cancelled_by=("game", "fiction", "defensive")),
    Rule("violence.glorify", "violence",
         r"\b(?:shooting|massacre|genocide|bombing|attack|lynching|holocaust|murders?)\b[^.?!]{0,20}?"
         r"\b(?:was|is|were) (?:justified|right|good|deserved)\b|\bright to (?:kill|murder|shoot|"
         r"attack|bomb)\b|\bwhy (?:was|is|were)\b[^.?!]{0,40}?\b(?:shooting|massacre|genocide|"
         r"bombing|attack|lynching|holocaust|murders?)\s+(?:justified|right|good|deserved)\b",
         needs_intent=False),
    Rule("violence.trafficking", "violence",
         r"\b(?:human|sex|child|organ) trafficking\b", cancelled_by=("defensive", "fiction")),
    Rule("child_safety.abuse", "child_safety",
         r"\b(?:pa?edophil\w*|child porn\w*|csam|sexual\w* (?:with|abuse of|abusing) (?:a |an )?"
         r"(?:minor|child|kid|children|kids)|groom\w* (?:a |an )?(?:child|kid|minor)s?)\b",
         needs_intent=False, cancelled_by=("defensive",)),
    Rule("violence.replicate_atrocity", "violence",
         r"\b(?:replicate|repeat|recreate|copy|do the same as|carry out)\b[^.?!]{0,30}?\b(?:the )?"
         r"(?:holocaust|genocide|massacre|9/11|columbine|school shooting|mass shooting|"
         r"ethnic cleansing|pogrom|lynching|(?:impact|effects?) of the (?:atomic |nuclear )?bombs?|"
         r"atomic bomb\w*|bombing)s?\b"),
    Rule("violence.make_talk", "violence",
         r"\b(?:torture|beat|hurt)\b[^.?!]{0,30}\bmake (?:them|him|her) talk\b"),
    # -- weapons ---------------------------------------------------------------------------------
    Rule("weapons.make", "weapons",
         rf"\b(?:make|making|build|building|construct|assemble|manufacture|create|produce|"
         rf"3d[- ]?print|print|cook up|brew|craft|synthesi[sz]e|get|buy|acquire|obtain)\b"
         rf"{_GAP}\b(?:a\s+|an\s+|some\s+|the\s+|my\s+|homemade\s+|home-made\s+)*{_WEAPONS}\b",
         cancelled_by=("game", "defensive")),
    Rule("weapons.blow_up", "weapons",
         r"\bblow(?:ing)? up\b[^.?!]{0,20}?\b(?:a|an|the|my|our|their|his|her)?\s*(?:\w+'s\s+)?"
         r"(?:school|building|car|bus|plane|train|house|church|mosque|synagogue|temple|hospital|"
         r"police station|office|stadium|bridge|gym|gymnasium|mall|station|embassy|airport|"
         r"people|someone|crowd|city|parliament|factory|power plant)\b",
         cancelled_by=("game", "fiction")),
    Rule("weapons.full_auto", "weapons",
         r"\b(?:convert|modify|turn|make)\b[^.?!]{0,50}?\b(?:fully? auto(?:matic)?|full-auto|"
         r"automatic fire|auto sear|bump stock)\b"),
    Rule("weapons.no_background_check", "weapons",
         r"\b(?:guns?|firearms?|rifles?|pistols?|weapons?)\b[^.?!]{0,40}?\b(?:without (?:a )?"
         r"(?:background check|licen[cs]e|permit)|illegally|on the dark ?web)\b"),
    Rule("weapons.toxic_mix", "weapons",
         r"\b(?:mix|combine)\b[^.?!]{0,50}?\b(?:toxic|poison(?:ous)?|deadly|lethal)\s+"
         r"(?:gas|fumes|chemicals?|cloud)\b[^.?!]{0,30}\b(?:hurt|kill|harm|people)\b",
         needs_intent=False),
    # -- self-harm -------------------------------------------------------------------------------
    Rule("self_harm.myself", "self_harm",
         r"\b(?:kill|hurt|harm|cut|injure|starve|hang|drown|poison|burn|suffocate|shoot)\s+"
         r"myself\b", needs_intent=False, cancelled_by=("defensive", "game")),
    Rule("self_harm.end_life", "self_harm",
         r"\b(?:end|take)\s+my\s+(?:own\s+)?life\b|\bcommit(?:ting)? suicide\b|\bsuicide methods?\b"
         r"|\bways? to die\b|\bdie painlessly\b|\bmake sure i die\b|\bkill me\b",
         cancelled_by=("defensive", "game")),
    Rule("self_harm.self_harm", "self_harm",
         r"\bself[- ]?harm\w*\b[^.?!]{0,50}?\b(?:without (?:anyone|anybody|my parents|people) "
         r"(?:noticing|knowing|finding out)|keep doing|secretly|hide)\b|\b(?:way|ways|how) to "
         r"self[- ]?harm\b", needs_intent=False),
    Rule("self_harm.overdose", "self_harm",
         r"\boverdose on (?:my|his|her|their)\b|\bhow (?:do|can|could|would) i (?:overdose|od)\b",
         needs_intent=False),
    Rule("self_harm.eating_disorder", "self_harm",
         r"\bmake myself (?:throw up|vomit|puke|sick)\b|\bpurge after\b|\bstarve myself\b",
         needs_intent=False, cancelled_by=("defensive",)),
    Rule("self_harm.encourage", "self_harm",
         r"\b(?:encourag\w*|convinc\w*|persuad\w*|urg\w*|tell\w*)\b[^.?!]{0,40}?(?:\bto (?:kill|hang|"
         r"hurt) (?:themselves|himself|herself|yourself)\b|\bsuicide is\b|\bto commit suicide\b|"
         r"\bto end (?:their|his|her|your) li(?:fe|ves)\b)", needs_intent=False),
    Rule("self_harm.skin", "self_harm",
         r"\b(?:carve|cut|burn|scratch|slice|scar)\w*\b[^.?!]{0,30}?\b(?:into |on |in )?my (?:own )?"
         r"(?:arm|arms|wrist|wrists|leg|legs|skin|thigh|thighs|body|stomach)\b",
         needs_intent=False, cancelled_by=("defensive", "game")),
    Rule("self_harm.jump", "self_harm",
         r"\bjump (?:from|off)\b[^.?!]{0,40}?\b(?:die|death|kill)\b"),
    # -- illegal drugs ---------------------------------------------------------------------------
    Rule("illegal_drugs.make", "illegal_drugs",
         rf"\b(?:make|making|cook|cooking|synthesi[sz]e|produce|manufacture|brew|extract|refine)\b"
         rf"{_GAP}\b{_DRUGS}\b", cancelled_by=("defensive",)),
    Rule("illegal_drugs.grow_to_sell", "illegal_drugs",
         r"\bgrow\w*\b[^.?!]{0,20}?\b(?:weed|cannabis|marijuana|pot|poppies|coca)\b[^.?!]{0,40}?"
         r"\b(?:sell|secretly|illegally|hide|without|school)\b"),
    Rule("illegal_drugs.acquire", "illegal_drugs",
         rf"\b(?:buy|get|score|purchase|order|find|source|obtain)\b{_GAP}\b{_DRUGS}\b"
         r"[^.?!]{0,40}?\b(?:without (?:a )?(?:prescription|getting caught|being caught|id|"
         r"anyone)|illegally|on the dark ?web|from a dealer|secretly)\b"),
    Rule("illegal_drugs.acquire_hard", "illegal_drugs",
         r"\b(?:buy|get|getting|score|purchase|order|find|source|obtain|pick up)\b[^.?!]{0,25}?"
         r"\b(?:meth|methamphetamine|crystal meth|crack|cocaine|heroin|fentanyl|lsd|mdma|ecstasy|"
         r"molly|dmt|ghb|pcp|ketamine|opium|(?:gram|grams|bag|line|ounce|kilo|eight ?ball) of coke)\b",
         cancelled_by=("defensive", "game", "fiction")),
    Rule("illegal_drugs.traffic", "illegal_drugs",
         rf"\b(?:sell|deal|smuggle|traffic|ship|mail|transport|hide|conceal|stash|post)\w*\b{_GAP}"
         rf"\b{_DRUGS}\b", cancelled_by=("defensive",)),
    Rule("illegal_drugs.dealer", "illegal_drugs", r"\bbecome a (?:drug )?dealer\b"),
    Rule("illegal_drugs.use_secretly", "illegal_drugs",
         r"\b(?:smoke|inject|snort|shoot up|take|use|do)\s+(?:heroin|cocaine|coke|meth|crack|"
         r"fentanyl|lsd|mdma|ecstasy|molly|dmt|ketamine)\b", cancelled_by=("defensive",)),
    Rule("illegal_drugs.get_high", "illegal_drugs",
         r"\bget(?:ting)? high\b", cancelled_by=("defensive", "game")),
    Rule("illegal_drugs.spike", "illegal_drugs",
         r"\b(?:spike|lace|roofie|drug)\b[^.?!]{0,25}?\b(?:drinks?|food|coffee|beer|wine|cocktail)\b",
         needs_intent=False, cancelled_by=("defensive",)),
    # -- fraud and theft -------------------------------------------------------------------------
    Rule("fraud.steal", "fraud",
         r"\b(?:steal|shoplift|rob|pickpocket|embezzle|pilfer)\w*\b[^.?!]{0,40}?\b(?:cars?|money|"
         r"cash|wallets?|purses?|bikes?|bicycles?|phones?|jewel\w*|identit\w*|credit cards?|banks?|"
         r"stores?|shops?|registers?|till|packages?|catalytic converters?|someone|goods|items|"
         r"things|employer|company|passwords?|credentials|data)\b",
         cancelled_by=("game", "fiction", "defensive")),
    Rule("fraud.theft", "fraud",
         r"\b(?:steal|stealing|stole|rob|robbing)\b\s+(?:an? |the |some |someone's |someone else's |"
         r"my \w+'s |his |her |their )(?!(?:base|bases|show|spotlight|glance|look|kiss|heart|"
         r"moment|march|idea|scene|thunder|limelight|second|breath|nap|win|point|ball|puck|"
         r"possession|cradle)\b)\w+",
         cancelled_by=("game", "fiction", "defensive")),
    Rule("fraud.burglary", "fraud",
         r"\b(?:break\w*|broke|get|sneak)\s+in(?:to)?\b[^.?!]{0,30}?\b(?:house|home|apartment|flat|"
         r"car|shop|store|building|office|safe|garage|shed)\b",
         cancelled_by=("game", "fiction", "defensive", "own")),
    Rule("fraud.launder", "fraud",
         r"\blaunder\w*\b[^.?!]{0,30}?\b(?:money|cash|funds|proceeds|profits|bitcoin|crypto)\b",
         cancelled_by=("defensive",)),
    Rule("fraud.forge", "fraud",
         r"\b(?:forge|fake|counterfeit|falsify|fabricate|doctor)\w*\b[^.?!]{0,30}?\b(?:signatures?|"
         r"passports?|ids?|id cards?|driver'?s licen[cs]es?|licen[cs]es?|documents?|checks?|"
         r"cheques?|money|bills|banknotes|notes?|currency|prescriptions?|diplomas?|degrees?|"
         r"certificates?|receipts?|invoices?|visas?|accidents?|injur\w*|claims?)\b",
         cancelled_by=("game", "defensive")),
    Rule("fraud.scam", "fraud",
         r"\b(?:scam|defraud|swindl|fleec|extort|blackmail)\w*\b[^.?!]{0,30}?\b(?:people|"
         r"elderly|old people|seniors|customers|investors|someone|victims|insurance|the government|"
         r"taxpayers|banks?|my \w+|him|her|them)\b", cancelled_by=("defensive",)),
    Rule("fraud.phishing", "fraud",
         r"\b(?:write|create|make|design|draft|send|build|set up)\b[^.?!]{0,40}?\bphishing\b",
         needs_intent=False),
    Rule("fraud.commit", "fraud",
         r"\bcommit\w*\b[^.?!]{0,30}?\bfraud\b|\b(?:set up|run|start|create|pull off|operate)\b"
         r"[^.?!]{0,20}?\b(?:ponzi|pyramid) scheme\b|\b(?:investment|insurance|tax|credit card|"
         r"wire|benefits?|welfare|mortgage|securities) fraud\b[^.?!]{0,40}?\bwithout getting caught\b",
         cancelled_by=("defensive",)),
    Rule("fraud.someone_elses_card", "fraud",
         r"\b(?:use|using|spend)\b[^.?!]{0,20}?\b(?:someone else'?s|another person'?s|stolen|"
         r"other people'?s)\b[^.?!]{0,20}?\b(?:credit cards?|cards?|bank|accounts?|identit\w*|ids?)\b"),
    Rule("fraud.tax_evasion", "fraud",
         r"\b(?:hide|conceal)\b[^.?!]{0,30}?\b(?:income|money|earnings|assets)\b[^.?!]{0,40}?"
         r"\b(?:tax|taxes|irs|hmrc|government|tax authorities)\b|\bevade (?:paying )?tax(?:es)?\b"),
    # -- hate ------------------------------------------------------------------------------------
    Rule("hate.discrimination", "hate",
         rf"\b{_GROUPS}\b[^.?!]{{0,50}}?\b{_DISCR}|\b{_DISCR}[^.?!]{{0,30}}?\b{_GROUPS}\b"
         rf"|\b(?:should(?:n't| not)?|must(?:n't| not)?|ought)\s+{_GROUPS}\s+(?:not\s+|never\s+)?"
         rf"(?:be\s+)?(?:allowed|permitted)\s+(?:to|near|in|into|at|on)\b",
         needs_intent=False, cancelled_by=("fiction", "defensive")),
    Rule("hate.normative", "hate",
         rf"\b{_GROUPS}\b[^.?!]{{0,15}}?\bshould(?:n't| not| never)?\s+{_NORMATIVE}\b"
         rf"|\bshould(?:n't| not| never)?\s+{_GROUPS}\s+(?:not\s+|never\s+)?{_NORMATIVE}\b"
         rf"|\b(?:right|best|better|fair|natural|justified)\s+(?:for\s+(?:society\s+)?(?:that\s+)?|"
         rf"that\s+){_GROUPS}\b|\bdiscriminat\w*\b[^.?!]{{0,20}}?\bagainst\s+{_GROUPS}\b"
         rf"|\b(?:eradicat|exterminat|eliminat|get rid of|deport)\w*\s+(?:all\s+)?{_GROUPS}\b",
         needs_intent=False, cancelled_by=("fiction", "defensive")),
    Rule("hate.denial", "hate",
         r"\b(?:genocide|massacre|holocaust|atrocit\w*|trail of tears|slavery|apartheid|"
         r"ethnic cleansing)\b[^.?!]{0,40}?\b(?:never (?:happened|took place|existed)|(?:was|is) "
         r"(?:a |an )?(?:complete |total )?(?:hoax|lie|fabrication|myth|made up|exaggerat\w*))\b",
         needs_intent=False),
    Rule("hate.mock_group", "hate",
         rf"\b(?:jokes?|poems?|songs?|story|stories|posts?|tweets?|speech|essay|messages?|memes?|"
         rf"insults?|rap)\b[^.?!]{{0,60}}?\b(?:mak\w* fun of|mock\w*|insult\w*|degrad\w*|"
         rf"ridicul\w*|humiliat\w*|hat\w*|against|demean\w*)\b[^.?!]{{0,40}}?\b{_GROUPS}\b",
         needs_intent=False),
    Rule("hate.slurs", "hate", r"\bslurs?\b[^.?!]{0,40}?\b(?:for|against|about|to call|use)\b",
         needs_intent=False, cancelled_by=("defensive",)),
    Rule("hate.supremacist", "hate",
         r"\b(?:white supremac\w*|white power|neo-?nazis?|kkk|ku klux klan|ethnic cleansing)\b"
         r"[^.?!]{0,40}?\b(?:recruit\w*|join|promot\w*|propaganda|manifesto|flyers?|message|speech|"
         r"slogan)\b|\b(?:recruit\w*|propaganda|manifesto|flyers?|message|speech)\b[^.?!]{0,40}?"
         r"\b(?:white supremac\w*|white power|neo-?nazis?|kkk|ku klux klan)\b", needs_intent=False),
    # -- privacy ---------------------------------------------------------------------------------
    Rule("privacy.private_person_data", "privacy",
         rf"\b{_PRIVATE}(?:'s|s')?\b[^.?!]{{0,30}}?\b{_PII}\b|\b{_PII}\b[^.?!]{{0,40}}?\b{_PRIVATE}\b"
         rf"|\bwhere {_PRIVATE} lives?\b",
         needs_intent=False, cancelled_by=("defensive", "own")),
    Rule("privacy.possessive_data", "privacy",
         rf"\bmy (?:\w+ ){{0,2}}\w+'s\s+(?:\w+\s+)?{_PII}\b|\bhow much (?:money )?does my \w+ "
         rf"(?:earn|make|have)\b", needs_intent=False, cancelled_by=("defensive", "own")),
    Rule("privacy.track", "privacy",
         rf"\b(?:track|trace|locate|monitor|spy on|stalk|follow|watch)\w*\b[^.?!]{{0,30}}?\b"
         rf"{_PRIVATE}\b", cancelled_by=("defensive",)),
    Rule("privacy.read_private", "privacy",
         rf"\b(?:read|access|check|see|get into|log into|open|look through|go through)\b"
         rf"[^.?!]{{0,20}}?\b{_PRIVATE}(?:'s|s')?\s+(?:\w+\s+)?(?:texts|text messages|messages|"
         rf"e-?mails?|e-?mail account|phone|account|accounts|dms|whatsapp|instagram|facebook|"
         rf"medical records|diary|laptop|computer|files)\b", cancelled_by=("defensive",)),
    Rule("privacy.dox", "privacy", r"\bdox+(?:ing|ed)?\b", cancelled_by=("defensive",)),
    Rule("privacy.spyware", "privacy",
         r"\b(?:install|put|hide|plant)\w*\b[^.?!]{0,30}?\b(?:spyware|stalkerware|keyloggers?|"
         r"trackers?|tracking apps?|hidden cameras?|gps trackers?|recording devices?)\b",
         cancelled_by=("defensive",)),
    Rule("privacy.secret_recording", "privacy",
         r"\bsecretly (?:record|film|photograph|watch|listen to|video)\b|\brecord\w*\b[^.?!]{0,30}?"
         r"\binside (?:their|his|her) (?:house|home|bedroom|bathroom)\b", needs_intent=False),
    Rule("privacy.private_photos", "privacy",
         r"\b(?:find|get|obtain|leak|share|post)\b[^.?!]{0,30}?\b(?:private|intimate|nude|naked|"
         r"personal) (?:photos|pictures|pics|images|videos)\b"),
    # -- malware and intrusion -------------------------------------------------------------------
    Rule("malware.make", "malware",
         rf"\b(?:write|create|make|build|code|develop|program|design|generate|deploy|spread|"
         rf"launch|plant)\w*\b{_GAP}\b{_MALWARE}\b", cancelled_by=("game", "defensive")),
    Rule("malware.intrude", "malware",
         r"\b(?:hack\w*|break\w*|get|sneak|log)\s+(?:in)?to\b[^.?!]{0,40}?\b(?:account|e-?mail|"
         r"computer|laptop|phone|network|server|system|database|wi-?fi|router|website|instagram|"
         r"facebook|snapchat|whatsapp|icloud|gmail|grading|camera|webcam|records)\b",
         cancelled_by=("game", "own", "defensive")),
    Rule("malware.hack", "malware",
         r"\bhack\w*\b[^.?!]{0,30}?\b(?:someone|account|e-?mail|instagram|facebook|snapchat|"
         r"wi-?fi|phone|password|bank|school|grades?|government|network|webcam|camera|ex)\b",
         cancelled_by=("game", "own", "defensive")),
    Rule("malware.credentials", "malware",
         r"\b(?:crack|guess|brute[- ]?force|bypass|steal|phish|sniff|dump)\w*\b[^.?!]{0,40}?"
         r"\b(?:wi-?fi|wpa2?|passwords?|credentials|logins?|2fa|two-factor|authentication|pins?|"
         r"passcodes?|cookies|session tokens?|hashes)\b", cancelled_by=("game", "own", "defensive")),
    Rule("malware.ddos", "malware",
         r"\b(?:ddos|dos attack|denial[- ]of[- ]service)\b|\bknock\w*\b[^.?!]{0,30}?\boffline\b",
         cancelled_by=("defensive",)),
    Rule("malware.exploit", "malware",
         r"\bexploit\w*\b[^.?!]{0,40}?\b(?:vulnerabilit\w*|bug|flaw|hole|zero-day)\b[^.?!]{0,60}?"
         r"\b(?:website|server|system|bank|network|app|company|steal|access|database)\b",
         cancelled_by=("defensive",)),
    Rule("malware.sql_injection", "malware",
         r"\b(?:inject\w*\s+sql|sql injection)\b[^.?!]{0,60}?\b(?:dump|steal|login|database|"
         r"company|site|website)\b", cancelled_by=("defensive",)),
    Rule("malware.disable_security", "malware",
         r"\b(?:disable|kill|turn off|bypass|evade)\b[^.?!]{0,30}?\b(?:antivirus|anti-virus|"
         r"firewall|edr|defender|security software)\b[^.?!]{0,60}?\b(?:install|malware|virus|"
         r"without|school|work|someone|their)\b"),
)

# --------------------------------------------------------------------------- signals

_INTENT = re.compile(
    r"\b(?:how (?:do|can|could|would|should|might|to|will) (?:i|we|you|one|someone|somebody)|"
    r"how to|ways? (?:to|of)|(?:best|good|perfect|ideal) (?:way|place|time|method|spot)|"
    r"easiest way|quickest way|"
    r"simplest way|safest way|"
    r"cheapest way|most (?:effective|painless|efficient) way|steps? (?:to|for)|"
    r"instructions? (?:to|for|on)|guide (?:to|for|on)|tips? (?:to|for|on)|help me|teach me|"
    r"show me|tell me|explain how|give me|write (?:me )?|create|generate|compose|draft|"
    r"i want to|i'm going to|i am going to|i plan to|i need to|i'd like to|where can i|"
    r"where do i|where should i|what(?:'s| is) the (?:best|easiest|quickest|most)|"
    r"can you|could you|would you|please|plan (?:to|for|a|an)|what should i use|"
    r"which \w+ (?:can|should) i|how (?:many|much) \w+(?: \w+)? (?:would|will|do|does|should) "
    r"(?:it|i|one|you)|convince|persuade|find|(?:can|could|should|do|would|will) (?:i|we)|"
    r"process (?:for|of)|strategy (?:for|to)|what do i need|reasons? why|list (?:some|the)?|"
    r"make people believe|show that|prove that)\b"
    r"|^(?:make|build|write|create|give|tell|explain|describe|list|show|teach|help|generate|"
    r"draft|compose|find|provide|convince|design|plan|get|hack|steal|kill)\b"
)
_GAME = re.compile(
    r"\bin (?:the |a |my |this |that )?(?:game|video ?game|videogame|match|round|level|"
    r"minecraft|fortnite|call of duty|cod|gta(?: \w+)?|grand theft auto|elden ring|skyrim|"
    r"among us|overwatch|valorant|counter[- ]?strike|cs:?go|pubg|apex legends|halo|the sims(?: \d)?|"
    r"sims(?: \d)?|world of warcraft|wow|league of legends|dota ?2?|chess|poker|checkers|"
    r"dark souls|zelda|mario(?: kart)?|pokemon|hacknet|roblox|fallout|the witcher|doom|"
    r"assassin'?s creed|hitman|red dead redemption|battlefield|monopoly|cluedo|clue|"
    r"dungeons (?:and|&) dragons|d&d|paintball|laser tag|airsoft|fantasy football|rugby|"
    r"football|boxing|mma|ufc|wrestling|fencing|karate|judo)\b"
    r"|\b(?:minecraft|fortnite|call of duty|gta|elden ring|skyrim|hacknet|the sims|roblox)\b"
)
_FICTION = re.compile(
    r"\b(?:in|for) (?:my|a|the|this) (?:novel|story|book|screenplay|script|play|film|movie|"
    r"short story|fiction|comic|poem|tv show|series|murder mystery)\b|\bi'm writing\b|"
    r"\bi am writing\b|\bfictional\b|\bin fiction\b|\bin (?:the )?(?:movie|film|book|novel|show)\b"
)
_REAL = re.compile(r"\b(?:in real life|irl|for real|in reality|real[- ]world|actually)\b")
_DEFENSIVE = re.compile(
    r"\b(?:protect (?:myself|yourself|my|your|me|us|against|from)|defend (?:myself|against|"
    r"yourself)|prevent\w*|detect(?:ing|ion)?\b(?! me)|recogni[sz]e|spot (?:a|an|the|signs)|"
    r"warning signs|signs of|tell if|know if|what (?:to|should i|do i|can i) do if|"
    r"report (?:a|an|it|them|someone|this)|help (?:a|my|someone|him|her|them|people|a friend)|"
    r"talk to (?:my|a|someone)|cope with|safe from|stay safe|recover from|get rid of my own|"
    r"stop (?:\w+ing )?myself|stop (?:\w+ing)\b|remove (?:a|the|my)|secure (?:my|your))"
)
_EVASION = re.compile(
    r"\bwithout (?:anyone|anybody|the police|the owner|my parents|her|him|them|getting caught|"
    r"being (?:caught|seen|noticed|detected|traced)|leaving (?:marks|a trace|traces|evidence|any "
    r"evidence|fingerprints)|detection)\b|\bget away with\b|\bso (?:the )?police\b|"
    r"\bundetect(?:ed|able)\b|\buntraceable\b|\bavoid (?:getting caught|being caught|detection|"
    r"the police)\b"
)
_OWN = re.compile(
    r"\bmy own\b|\bforgot(?:ten)? (?:my|the) password\b|\bmy forgotten\b|\breset my\b"
)

#: Harmless compounds that contain trigger words, replaced before matching.
_SAFE_COMPOUNDS = re.compile(
    r"\b(?:bath|photo|seed|glitter|calorie|flavou?r|cherry|stink|confetti|water|smoke|paint|"
    r"chocolate|cake|yarn|truth|f|love|da|sex)[- ]?bombs?\b"
    r"|\b(?:glue|nail|water|nerf|heat|staple|spray|squirt|foam|top|paintball|airsoft|radar|"
    r"grease|caulk|caulking|toy|bubble|massage|tattoo|hot glue|starting|speed)[- ]guns?\b"
    r"|\bhigh (?:scores?|marks|grades|notes|ratings?|quality|ranks?|ground|speed|returns?|yields?)\b"
    r"|\btake (?:\S+ ){0,3}out (?:for|to) (?:a |an |some )?(?:dinner|lunch|breakfast|brunch|"
    r"coffee|drinks?|date|meal|movie|walk|ride|spin)\b|\btake out (?:\S+ ){0,3}for (?:a |an |some )?"
    r"(?:dinner|lunch|breakfast|brunch|coffee|drinks?|date|meal|movie|walk|ride|spin)\b"
    r"|\bbomb(?:ed|ing)? (?:the |a |an |my |this |that )?(?:test|exam|interview|presentation|"
    r"audition|quiz|speech|gig|set|show|performance|date)\b"
    r"|\b(?:weed|weeds)[- ](?:killer|free|whacker|eater)\b|\bkill (?:time|it|the lights|the engine|"
    r"the mood|the music|the process|the power)\b|\bpot (?:plants?|roast|luck|holes?)\b"
)

_COMPILED = tuple((rule, re.compile(rule.pattern)) for rule in RULES)

RULESET_DIGEST = hashlib.sha256(
    "\n".join(
        f"{r.name}|{r.category}|{r.needs_intent}|{','.join(r.cancelled_by)}|{r.pattern}"
        for r in RULES
    ).encode()
    + "".join(p.pattern for p in (_INTENT, _GAME, _FICTION, _REAL, _DEFENSIVE, _EVASION, _OWN,
                                  _SAFE_COMPOUNDS)).encode()
).hexdigest()[:16]
"""Digest of every pattern above: part of a guarded candidate's fingerprint."""


def normalise(text: str) -> str:
    """Lower-case, straight apostrophes and quotes, single spaces, harmless compounds neutralised.

    Args:
        text: A request.
    """
    t = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    t = t.replace("\u201c", '"').replace("\u201d", '"')
    t = re.sub(r"\s+", " ", t).strip()
    return _SAFE_COMPOUNDS.sub("harmless-item", t)


def flag_request(text: str) -> Flag | None:
    """The first rule that flags ``text`` as a harmful request, or None.

    Args:
        text: The user's request (any user-turn text).
    """
    t = normalise(text)
    if not t:
        return None
    intent = bool(_INTENT.search(t))
    real = bool(_REAL.search(t))
    evasive = bool(_EVASION.search(t))
    contexts = {
        "game": bool(_GAME.search(t)) and not real,
        "fiction": bool(_FICTION.search(t)) and not real,
        "defensive": bool(_DEFENSIVE.search(t)) and not evasive,
        "own": bool(_OWN.search(t)),
    }
    for rule, pattern in _COMPILED:
        if rule.needs_intent and not intent:
            continue
        m = pattern.search(t)
        if m is None:
            continue
        if any(contexts[c] for c in rule.cancelled_by):
            continue
        return Flag(rule.category, rule.name, m.group(0)[:80])
    return None
