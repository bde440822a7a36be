import CTBusJournal
import CTBusNode
import CTBusPolicy
import CTBusSchema
import CTBusTrace
import Foundation
import Hummingbird

/// The pages that only read the journal: the journal itself, each message, the traceability
/// report and the node's status. Each runs on the thread pool (`offPool`).
struct ReadOnlyPages: Sendable {
    let nodeId: String
    let journal: NodeJournal
    /// The entries this console may show: every page that shows entries reads them here.
    let visible: VisibleJournal
    /// The node's registry copy: the message page checks each message's signature against it.
    let registry: NodeRegistry?
    let check: JournalCheck
    let responses: HTMLResponder

    func journalPage(_ request: Request) throws -> Response {
        let filter: JournalFilter
        let query: JournalQuery
        do {
            (filter, query) = try JournalQuery.parse(request.uri.queryParameters)
        } catch {
            return responses.error(.badRequest, error.description)
        }
        let page = try visible.page(filter, size: VisibleJournal.pageSize)
        let choices = try visible.filterChoices()
        return responses.page(JournalPage(page: page, query: query, memberStates: choices.memberStates, themes: choices.themes,
                                          choiceClassifications: choices.classifications, now: Date()))
    }

    /// A message this console may show; one this node published comes with its publication's
    /// life and, while it may still be revoked, the revoke form.
    func messagePage(_ id: String, csrf: String, done: ActionDone?) throws -> Response {
        let id = MessageID.canonical(id)
        guard let (entry, pending) = try visible.entryWithPending(messageId: id) else {
            return responses.error(.notFound, "This journal holds no message \(id.prefix(64)) that this console may show.")
        }
        guard let message = try? entry.message() else {
            return responses.error(.internalServerError, "The journal entry of \(id) cannot be decoded: run ctbus journal verify.")
        }
        let published = entry.direction == .sent && entry.originator == nodeId
        var named = message.envelope.references.map(\.messageID)
        if case .activityMatrix(let matrix)? = message.payload { named += matrix.activities.flatMap(\.recommendationIds) }
        return responses.page(MessagePage(
            entry: entry, message: message, signature: registry.map { entry.signatureState(registry: $0) }, registry: registry,
            referrers: try visible.referrers(of: id),
            publication: published ? .init(pendingRevocation: pending.map { ($0.revocation.reason, $0.lastSentAt) }, csrf: csrf) : nil,
            referenced: try visible.referenced(named), done: done))
    }

    func tracePage(_ request: Request) throws -> Response {
        let query: TracePage.Query
        do {
            let parameters = request.uri.queryParameters
            query = try TracePage.Query.parse(memberState: parameters.get("member_state"), sort: parameters.get("sort"))
        } catch {
            return responses.error(.badRequest, error.description)
        }
        let (messages, names) = try visible.traceMessages()
        // The filter's choices: every State a recommendation names, read without a second report.
        let states = Set(messages.compactMap { message -> String? in
            if case .countryVisitRecommendation(let value) = message.payload { value.memberState } else { nil }
        })
        return responses.page(TracePage(report: Traceability.report(messages, memberState: query.memberState), classifications: names,
                                        memberStates: states.sorted(), query: query))
    }

    /// A Member State's or region's file; a code that names neither is not found.
    func countryFilePage(_ code: String) throws -> Response {
        let code = code.uppercased()
        guard Geography.isCountryCode(code) || Geography.isRegionCode(code) else {
            return responses.error(.notFound, "There is no Member State or region \(code.prefix(24)).")
        }
        let found = try visible.countryMessages(code)
        let file = Traceability.countryFile(found.map(\.message), memberState: code)
        let shown = Set(file.report.recommendations.map(\.id) + file.report.recommendations.flatMap(\.answeredBy).map(\.matrixId)
                        + file.activities.map(\.matrixId) + file.missionReports.map(\.id))
        let names = found.filter { shown.contains($0.message.envelope.messageID) }.map(\.classification)
        return responses.page(CountryFilePage(file: file, classifications: names, now: Date()))
    }

    /// Every Member State and region the journal's messages are about.
    func countryIndexPage() throws -> Response {
        let (messages, names) = try visible.traceMessages()
        let choices = try visible.filterChoices()
        return responses.page(CountryIndexPage(groups: Traceability.report(messages).byMemberState, subjects: choices.memberStates,
                                               classifications: names + choices.classifications))
    }

    func statusPage(csrf: String, done: ActionDone?) throws -> Response {
        let outbox = try journal.outbox.counts()
        let received = try journal.entries(matching: JournalFilter(direction: .received, newestFirst: true, limit: 1)).first
        let search = try journal.search.status()
        let facts = StatusPage.Facts(daemonRunning: FileLock.isHeld(journal.path), session: try journal.session(),
                                     entries: search.last, outbox: outbox.waiting, refused: outbox.refused,
                                     drafts: try journal.drafts.list().count, lastReceived: received?.recordedAt,
                                     lastAcknowledged: try journal.lastAcknowledgement(), searchIndexed: search.indexedThrough,
                                     verify: check.last, verifying: check.isRunning,
                                     notifications: try journal.notifications.status())
        return responses.page(StatusPage(facts: facts, csrf: csrf, done: done))
    }
}
