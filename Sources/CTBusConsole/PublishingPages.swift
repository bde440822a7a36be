import CTBusJournal
import CTBusNode
import CTBusPolicy
import CTBusSchema
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// The pages that change something, all about what this node publishes: compose forms, drafts
/// (released or discarded), revocation. Their forms reach them through `FormRequests.changing`.
struct PublishingPages: Sendable {
    let nodeId: String
    let journal: NodeJournal
    /// The entries this console may show: a message is revoked here only if it is one of them.
    let visible: VisibleJournal
    let context: ComposeContext
    let publisher: ConsolePublisher
    let responses: HTMLResponder
    let logger: Logger

    func composeIndex() -> Response {
        responses.page(ComposeIndexPage(context: context))
    }

    func composePage(_ slug: String, form: FormValues, errors: ComposeForm.Errors, csrf: String,
                     status: HTTPResponse.Status = .ok) -> Response {
        guard let type = ComposeForm.type(slug: slug) else { return responses.error(.notFound, "There is no message type \(slug.prefix(40)) to compose.") }
        guard context.mayPublish.contains(type) else {
            return responses.error(.forbidden, "This node's role may not publish \(ComposeForm.title(type).lowercased())s.")
        }
        return responses.page(ComposePage(type: type, context: context, form: form, errors: errors, csrf: csrf), status: status)
    }

    /// A submitted compose form. Its first button (what Enter presses) asks for the review
    /// (`ReviewPage`): who receives it, by the broker's own admission step, and what it says.
    /// From there Publish queues it (as `ctbus publish` does, checked again), Save as draft keeps
    /// it, Change it goes back to the form. A form that does not validate, or that the broker
    /// would refuse, comes back with its errors (422), nothing written.
    func compose(_ slug: String, form: FormValues, csrf: String) throws -> Response {
        guard let type = ComposeForm.type(slug: slug), context.mayPublish.contains(type) else {
            return composePage(slug, form: form, errors: .init(), csrf: csrf)
        }
        // A file input cannot be filled again: what the file held comes back in the text area,
        // and travels on from there.
        var shown = form
        if let file = form.values["activity_matrix.activities_file"]?.first, !file.isEmpty, form.text("activity_matrix.activities").isEmpty {
            shown.set("activity_matrix.activities", file)
        }
        shown.remove("activity_matrix.activities_file")
        let action = form.text("action")
        if action == "edit" { return composePage(slug, form: shown, errors: .init(), csrf: csrf) }
        let draft = action == "draft"
        func refused(_ failure: BusError) -> Response {
            var errors = ComposeForm.Errors()
            errors.add(failure, fields: ComposeForm.allFields(type, context: context), subjectField: nil)
            return composePage(slug, form: shown, errors: errors, csrf: csrf, status: .unprocessableContent)
        }
        /// Where a publication or a draft saved leads: its page, or the drafts, saying so.
        func done(_ id: String) -> Response {
            Response(status: .seeOther, headers: [.location: draft ? ActionDone.draftSaved.location("/drafts")
                                                                   : ActionDone.queued.location(PageLayout.messageHref(id))])
        }
        switch ComposeForm.message(type, form: form, context: context) {
        case .failure(let box):
            return composePage(slug, form: shown, errors: box.errors, csrf: csrf, status: .unprocessableContent)
        case .success(let message) where action != "publish" && !draft:
            do {
                let decisions = try publisher.preview(message)?.filter { $0.node.id != nodeId }
                return responses.page(ReviewPage(type: type, message: message, decisions: decisions, form: shown, csrf: csrf))
            } catch let failure as BusError {
                return refused(failure)
            }
        case .success(let message):
            do {
                try publisher.publish(message, asDraft: draft)
            } catch let failure as BusError {
                return refused(failure)
            } catch let failure as StoreError where failure.kind == .duplicate {
                // Publish pressed again on the same review: it went the first time.
                return done(message.envelope.messageID)
            }
            let id = message.envelope.messageID
            logger.info("console \(draft ? "saved a draft" : "queued a publication")", metadata: ["message_id": "\(id)", "type": "\(type.name)"])
            return done(id)
        }
    }

    func draftsPage(csrf: String, done: ActionDone?) throws -> Response {
        responses.page(DraftsPage(drafts: try journal.drafts.all(), csrf: csrf, done: done))
    }

    /// Release (validated again, then to the outbox) or discard a draft.
    func draftAction(_ id: String, action: String) throws -> Response {
        let id = MessageID.canonical(id)
        guard MessageID.isUUID(id) else { return responses.error(.notFound, "There is no draft \(id.prefix(64)).") }
        switch action {
        case "release":
            do {
                try publisher.release(draft: id)
            } catch let failure as StoreError where failure.kind == .notFound {
                return responses.error(.notFound, "There is no draft \(id).")
            } catch let failure as BusError {
                return responses.error(.unprocessableContent, "The draft cannot be released: \(failure.detail). Discard it and compose it again.")
            }
            logger.info("console released a draft", metadata: ["message_id": "\(id)"])
            return Response(status: .seeOther, headers: [.location: ActionDone.released.location(PageLayout.messageHref(id))])
        case "discard":
            guard try journal.drafts.discard(messageId: id) else { return responses.error(.notFound, "There is no draft \(id).") }
            logger.info("console discarded a draft", metadata: ["message_id": "\(id)"])
            return Response(status: .seeOther, headers: [.location: ActionDone.discarded.location("/drafts")])
        default:
            return responses.error(.notFound, "There is no such page.")
        }
    }

    /// Queues the revocation of a message this node published (as `ctbus revoke` does).
    func revoke(_ id: String, form: FormValues) throws -> Response {
        let id = MessageID.canonical(id)
        guard let entry = try visible.entry(messageId: id) else {
            return responses.error(.notFound, "This journal holds no message \(id.prefix(64)) that this console may show.")
        }
        guard entry.direction == .sent, entry.originator == nodeId else {
            return responses.error(.forbidden, "Only the node that published a message can revoke it.")
        }
        guard form.text("confirm") == "yes" else {
            return responses.error(.badRequest, "Nothing was revoked: tick the box that confirms the revocation, then revoke again.")
        }
        let reason = form.text("reason").isEmpty ? "revoked by the originator" : form.text("reason")
        let revocation: Revocation
        do {
            revocation = try Revocation.signed(messageId: id, reason: reason, by: nodeId, with: try publisher.signer())
            try MessageValidator.validate(revocation.frame)
        } catch let error as BusError where error.code == .validationFailed {
            return responses.error(.unprocessableContent, "The reason is too long: at most \(WireLimits.revokeReasonBytes) bytes.")
        } catch let error as BusError {
            return responses.error(.forbidden, "This console cannot revoke: \(error.detail).")
        }
        try journal.revocations.queue(revocation)
        logger.info("console queued a revocation", metadata: ["message_id": "\(id)"])
        return Response(status: .seeOther, headers: [.location: ActionDone.revocationQueued.location(PageLayout.messageHref(id))])
    }
}
