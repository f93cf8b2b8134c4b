/// StreamLab: record and probe the residual stream of decoder-only Transformers.
public enum StreamLab {
    /// The library version, printed by `stream-probe --version`.
    public static let version = "0.1.0"
}
