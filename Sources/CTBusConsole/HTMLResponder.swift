import HTTPTypes
import Hummingbird
import NIOCore

/// Console pages as HTTP responses, laid out with the node's name in the title and navigation.
struct HTMLResponder: Sendable {
    let nodeId: String
    /// Whether this node's role publishes anything (the navigation offers Compose and Drafts only then).
    let publishes: Bool

    func page(_ page: some ConsolePage, status: HTTPResponse.Status = .ok) -> Response {
        self.page(page.title, marking: page.marking, done: page.done, page.body, status: status)
    }

    func page(_ title: String, marking: String?, done: ActionDone? = nil, _ body: HTML, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "text/html; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(string: PageLayout.page(title: title, node: nodeId, publishes: publishes, marking: marking,
                                                                            done: done, body))))
    }

    /// A page that says what went wrong, titled with the status's reason phrase.
    func error(_ status: HTTPResponse.Status, _ text: String) -> Response {
        var body = HTML()
        body.element("p", text)
        return page(status.reasonPhrase, marking: nil, body, status: status)
    }
}
