/// ISO 3166-1 alpha-3 country codes (the 249 assigned codes, from the ISO 3166 maintenance
/// agency's list as packaged by pycountry) and the region codes a message subject may use.
public enum Geography {
    /// Whether `code` is an assigned ISO 3166-1 alpha-3 code ("NGA", "IDN").
    public static func isCountryCode(_ code: String) -> Bool { countryCodes.contains(code) }

    /// Whether `code` is a region code CTBus knows ("SAHEL", "CENTRAL_ASIA").
    public static func isRegionCode(_ code: String) -> Bool { regionCodes.contains(code) }

    /// Regions used in CTED assessments and OCT programmes.
    public static let regionCodes: Set<String> = [
        "GLOBAL", "AFRICA", "NORTH_AFRICA", "WEST_AFRICA", "EAST_AFRICA", "CENTRAL_AFRICA", "SOUTHERN_AFRICA",
        "SAHEL", "LAKE_CHAD_BASIN", "HORN_OF_AFRICA", "MIDDLE_EAST", "GULF", "CENTRAL_ASIA", "SOUTH_ASIA",
        "SOUTH_EAST_ASIA", "EAST_ASIA", "PACIFIC", "EUROPE", "SOUTH_EASTERN_EUROPE", "LATIN_AMERICA",
        "CARIBBEAN", "NORTH_AMERICA",
    ]

    public static let countryCodes: Set<String> = [
        "ABW", "AFG", "AGO", "AIA", "ALA", "ALB", "AND", "ARE", "ARG", "ARM", "ASM", "ATA", "ATF", "ATG", "AUS", "AUT",
        "AZE", "BDI", "BEL", "BEN", "BES", "BFA", "BGD", "BGR", "BHR", "BHS", "BIH", "BLM", "BLR", "BLZ", "BMU", "BOL",
        "BRA", "BRB", "BRN", "BTN", "BVT", "BWA", "CAF", "CAN", "CCK", "CHE", "CHL", "CHN", "CIV", "CMR", "COD", "COG",
        "COK", "COL", "COM", "CPV", "CRI", "CUB", "CUW", "CXR", "CYM", "CYP", "CZE", "DEU", "DJI", "DMA", "DNK", "DOM",
        "DZA", "ECU", "EGY", "ERI", "ESH", "ESP", "EST", "ETH", "FIN", "FJI", "FLK", "FRA", "FRO", "FSM", "GAB", "GBR",
        "GEO", "GGY", "GHA", "GIB", "GIN", "GLP", "GMB", "GNB", "GNQ", "GRC", "GRD", "GRL", "GTM", "GUF", "GUM", "GUY",
        "HKG", "HMD", "HND", "HRV", "HTI", "HUN", "IDN", "IMN", "IND", "IOT", "IRL", "IRN", "IRQ", "ISL", "ISR", "ITA",
        "JAM", "JEY", "JOR", "JPN", "KAZ", "KEN", "KGZ", "KHM", "KIR", "KNA", "KOR", "KWT", "LAO", "LBN", "LBR", "LBY",
        "LCA", "LIE", "LKA", "LSO", "LTU", "LUX", "LVA", "MAC", "MAF", "MAR", "MCO", "MDA", "MDG", "MDV", "MEX", "MHL",
        "MKD", "MLI", "MLT", "MMR", "MNE", "MNG", "MNP", "MOZ", "MRT", "MSR", "MTQ", "MUS", "MWI", "MYS", "MYT", "NAM",
        "NCL", "NER", "NFK", "NGA", "NIC", "NIU", "NLD", "NOR", "NPL", "NRU", "NZL", "OMN", "PAK", "PAN", "PCN", "PER",
        "PHL", "PLW", "PNG", "POL", "PRI", "PRK", "PRT", "PRY", "PSE", "PYF", "QAT", "REU", "ROU", "RUS", "RWA", "SAU",
        "SDN", "SEN", "SGP", "SGS", "SHN", "SJM", "SLB", "SLE", "SLV", "SMR", "SOM", "SPM", "SRB", "SSD", "STP", "SUR",
        "SVK", "SVN", "SWE", "SWZ", "SXM", "SYC", "SYR", "TCA", "TCD", "TGO", "THA", "TJK", "TKL", "TKM", "TLS", "TON",
        "TTO", "TUN", "TUR", "TUV", "TWN", "TZA", "UGA", "UKR", "UMI", "URY", "USA", "UZB", "VAT", "VCT", "VEN", "VGB",
        "VIR", "VNM", "VUT", "WLF", "WSM", "YEM", "ZAF", "ZMB", "ZWE",
    ]
}
