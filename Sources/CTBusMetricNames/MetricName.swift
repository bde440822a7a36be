/// Every metric CTBus exports, named once: the broker, the node, the console and the HTTP side
/// all count and read through these cases, and `help` is each one's `# HELP` line (swift-metrics
/// has no place for it, and Prometheus's lint asks for it). A module of its own, with no
/// dependency, so that the loops and the HTTP side can share it.
public enum MetricName: String, CaseIterable, Sendable {
    case brokerPublicationsAcceptedTotal = "ctbus_broker_publications_accepted_total"
    case brokerPublicationsRefusedTotal = "ctbus_broker_publications_refused_total"
    case brokerDeliveriesTotal = "ctbus_broker_deliveries_total"
    case brokerPolicyRefusalsTotal = "ctbus_broker_policy_refusals_total"
    case brokerInFlightDeliveries = "ctbus_broker_in_flight_deliveries"
    case brokerNodeConnected = "ctbus_broker_node_connected"
    case brokerSessionsConnected = "ctbus_broker_sessions_connected"
    case brokerRegistryReloadsTotal = "ctbus_broker_registry_reloads_total"
    case brokerRetentionRemovedTotal = "ctbus_broker_retention_removed_total"
    case brokerSessionChangesTotal = "ctbus_broker_session_changes_total"
    case brokerStoreTransactionSeconds = "ctbus_broker_store_transaction_seconds"
    case brokerPublicationsPerTransaction = "ctbus_broker_publications_per_transaction"
    case brokerQueueDepth = "ctbus_broker_queue_depth"
    case brokerQueueOldestAgeSeconds = "ctbus_broker_queue_oldest_age_seconds"
    case brokerStoreMessages = "ctbus_broker_store_messages"
    case nodeJournalEntries = "ctbus_node_journal_entries"
    case nodeOutboxDepth = "ctbus_node_outbox_depth"
    case nodeOutboxRefused = "ctbus_node_outbox_refused"
    case nodeDrafts = "ctbus_node_drafts"
    case nodeSearchUnindexedEntries = "ctbus_node_search_unindexed_entries"
    case nodeBrokerSessionOpen = "ctbus_node_broker_session_open"
    case nodePublishAckSeconds = "ctbus_node_publish_ack_seconds"
    case nodeDeliveriesJournaledTotal = "ctbus_node_deliveries_journaled_total"
    case nodeDeliveriesRefusedTotal = "ctbus_node_deliveries_refused_total"
    case nodeJournalVerifyFailuresTotal = "ctbus_node_journal_verify_failures_total"

    /// What the metric means.
    public var help: String {
        switch self {
        case .brokerPublicationsAcceptedTotal: "Publications the broker stored (each once, resends not counted)."
        case .brokerPublicationsRefusedTotal: "Publications the broker refused, by error code (PROTOCOL.md section 8)."
        case .brokerDeliveriesTotal: "Deliver frames sent to a node (messages and revocations; sent again after a reconnection)."
        case .brokerPolicyRefusalsTotal: "Deliveries the policy withheld from a node, by rule, when a publication was stored."
        case .brokerInFlightDeliveries: "Deliveries sent to a node and not acknowledged yet (its credit in use)."
        case .brokerNodeConnected: "1 while the node has a session with the broker, else 0."
        case .brokerSessionsConnected: "Nodes with a session now."
        case .brokerRegistryReloadsTotal: "Registry reloads: applied, unchanged, or refused (the file did not validate, or the store could not record it)."
        case .brokerRetentionRemovedTotal: "What retention removed: messages (with their audit), and queue entries of removed nodes."
        case .brokerSessionChangesTotal: "Sessions opened (Hello), replaced (a newer connection), expired (no word from the node) and ended (a registry reload removed the node or its key)."
        case .brokerStoreTransactionSeconds: "Time of each store transaction that stores publications (with its fsync)."
        case .brokerPublicationsPerTransaction: "Publications stored together in one transaction."
        case .brokerQueueDepth: "Deliveries queued for a node and not acknowledged yet (read from the store at each scrape)."
        case .brokerQueueOldestAgeSeconds: "Age of the oldest message queued for a node; 0 when its queue is empty."
        case .brokerStoreMessages: "Publications the broker's store holds."
        case .nodeJournalEntries: "Entries in the node's journal."
        case .nodeOutboxDepth: "Publications in the node's outbox, not acknowledged by the broker yet."
        case .nodeOutboxRefused: "Publications of the node the broker refused for good."
        case .nodeDrafts: "Drafts kept in the node's journal."
        case .nodeSearchUnindexedEntries: "Newest journal entries the console's search index does not hold yet."
        case .nodeBrokerSessionOpen: "1 while the node daemon runs and has a session with the broker, else 0."
        case .nodePublishAckSeconds: "Time from a publication's first sending to the broker's acknowledgement (node serving its console)."
        case .nodeDeliveriesJournaledTotal: "Deliveries the node journaled (duplicates not counted)."
        case .nodeDeliveriesRefusedTotal: "Deliveries and revocations the node refused, by reason: unsigned, unknown_signing_key, signature_invalid, disclosure_mismatch, sealed_to_mismatch, seal_invalid, non_canonical, invalid, malformed, clearance, policy (releasability or a Member State restriction), revocation_invalid."
        case .nodeJournalVerifyFailuresTotal: "Journal verify runs (by the console: at start, hourly, on demand) that found damage or could not run."
        }
    }
}
