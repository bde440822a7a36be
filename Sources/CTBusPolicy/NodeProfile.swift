import CTBusSchema

/// What an organisation unit is on the bus; the role bounds what it may publish.
public enum Role: String, Codable, Sendable, CaseIterable {
    case oct
    case cted
    case workingGroup = "working-group"
    case compactEntity = "compact-entity"

    /// The message types a node of this role may ever publish: CTED publishes its visit
    /// recommendations, OCT its activity matrix, both share mission reports; other Compact
    /// entities may share mission reports; working groups only receive.
    public var publishableTypes: Set<MessageType> {
        switch self {
        case .cted: [.countryVisitRecommendation, .missionReport]
        case .oct: [.activityMatrix, .missionReport]
        case .compactEntity: [.missionReport]
        case .workingGroup: []
        }
    }
}

/// One node of the registry, as the policy sees it.
public struct NodeProfile: Sendable, Equatable {
    public let id: String
    public let role: Role
    public let clearance: Classification
    public let groups: Set<String>
    /// Types this node may publish (within its role's types).
    public let mayPublish: Set<MessageType>
    /// Types this node receives.
    public let subscriptions: Set<MessageType>
    /// Thematic tags this node follows; empty means every theme.
    public let themes: Set<String>

    public init(id: String, role: Role, clearance: Classification, groups: Set<String> = [],
                mayPublish: Set<MessageType>? = nil, subscriptions: Set<MessageType>? = nil,
                themes: Set<String> = []) {
        self.id = id
        self.role = role
        self.clearance = clearance
        self.groups = groups
        self.mayPublish = mayPublish ?? role.publishableTypes
        self.subscriptions = subscriptions ?? [.countryVisitRecommendation, .missionReport, .activityMatrix]
        self.themes = themes
    }
}
