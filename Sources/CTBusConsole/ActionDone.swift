import Hummingbird

/// The confirmation a page shows after an action, named in the address the action redirects to
/// (`?done=queued`). The vocabulary is fixed: nothing from the request is shown, only the text
/// chosen here for a name it recognises.
enum ActionDone: String, CaseIterable {
    case queued
    case draftSaved = "draft-saved"
    case released
    case discarded
    case revocationQueued = "revocation-queued"
    case verified
    case subscribed
    case unsubscribed

    var text: String {
        switch self {
        case .queued: "Published: signed and queued in this node's outbox. The node daemon sends it to the broker; "
            + "\"Stored by the broker\" below shows when the broker has it."
        case .draftSaved: "Saved as a draft. Nothing was sent; release it from this list when it is ready."
        case .released: "The draft was released: signed and queued in this node's outbox."
        case .discarded: "The draft was discarded. It was never sent."
        case .revocationQueued: "Revocation queued. The node daemon sends it; every node that received the message is told."
        case .verified: "The journal was checked just now: the result is under Journal verify."
        case .subscribed: "Subscribed: the messages that arrive from now on and pass its filter are notified."
        case .unsubscribed: "The subscription was removed, with what it had still to send."
        }
    }

    /// The notice at the top of the page (a status region, read out by screen readers).
    var notice: HTML {
        var html = HTML()
        html.element("p", text, attributes: [("class", "done"), ("role", "status")])
        return html
    }

    /// `path` with this confirmation asked for.
    func location(_ path: String) -> String { path + "?done=" + rawValue }

    /// The confirmation a request's address asks for, if it names one.
    init?(_ request: Request) {
        guard let name = request.uri.queryParameters.get("done"), let done = ActionDone(rawValue: name) else { return nil }
        self = done
    }
}
