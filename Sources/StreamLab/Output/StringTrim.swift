extension StringProtocol {
    /// The string without leading and trailing characters in `set`
    /// (FoundationEssentials has no `CharacterSet`).
    func trimming(_ set: Set<Character>) -> String {
        guard let first = firstIndex(where: { !set.contains($0) }) else { return "" }
        let last = lastIndex(where: { !set.contains($0) })!
        return String(self[first...last])
    }

    /// The string without leading and trailing spaces, tabs and newlines.
    func trimmingWhitespace() -> String { trimming([" ", "\t", "\n", "\r"]) }
}
