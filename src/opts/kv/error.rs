//! The option layer's one error type, with QEMU 7.2's texts.

use std::fmt;

use super::MAX_ITEMS;
use crate::chardev::validate::SpecError;

/// Every error the option layer (this module, `chardev` and `cli`) can report. `Display`
/// gives the exact text printed after the `fdmon: -opt ARG: ` prefix; a few are two or three
/// lines long (the later lines are printed without prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptError {
    /// `Invalid parameter 'KEY'`
    InvalidParameter(String),
    /// `Parameter 'KEY' expects 'on' or 'off'`
    ExpectsBool(String),
    /// `Parameter 'KEY' expects a number`
    ExpectsNumber(String),
    /// `Value 'VALUE' is too large for parameter 'KEY'`
    NumberTooLarge { key: String, value: String },
    /// Three lines: `Parameter 'KEY' expects a non-negative number below 2^64` + suffix hint.
    ExpectsSize(String),
    /// `Value 'VALUE' is out of range for parameter 'KEY'`
    SizeOutOfRange { key: String, value: String },
    /// Two lines: `Parameter 'id' expects an identifier` + what an identifier is.
    ExpectsIdentifier,
    /// `Parameter 'id' expects an identifier` without the hint line (legacy `chardev:` labels).
    ExpectsIdentifierBare,
    /// `Duplicate ID 'ID' for LIST`
    DuplicateId { id: String, list: String },
    /// `Parameter 'KEY' is missing`
    MissingParameter(String),
    /// `Parameter 'KEY' does not accept value 'VALUE'`
    BadEnumValue { key: String, value: String },

    /// `chardev: no id specified`
    NoChardevId,
    /// `chardev: "ID" missing backend`
    MissingBackend(String),
    /// `'NAME' is not a valid char driver name`
    InvalidDriverName(String),
    /// `None or one of 'path', 'fd' or 'host' option required.`
    TooManyAddresses,
    /// `chardev: socket: no port given`
    NoPortGiven,
    /// `'delay' and 'nodelay' are mutually exclusive`
    DelayAndNodelay,
    /// A spec-level check (`chardev::validate`), shared with QMP `chardev-add`.
    Spec(SpecError),
    /// `chardev: file: no filename given`
    FileNoPath,
    /// `chardev: pipe: no device path given`
    PipeNoPath,
    /// fdmon: `socket chardev needs one of 'path', 'fd' or 'host'`
    NoSocketAddress,
    /// fdmon: `port=` without `host=` (QEMU 7.2 then listens on nothing at all)
    PortWithoutHost,
    /// `cannot use stdio with -daemonize`
    StdioWithDaemonize,
    /// `cannot use stdio by multiple character devices`
    StdioInUse,
    /// Legacy `-qmp`/`-monitor` device: `'DEV' is not a valid char driver`
    NotValidCharDriver(String),
    /// Legacy `-qmp`/`-monitor` device, always the last line: `parse error: DEV`
    LegacyParseError(String),
    /// `chardev "NAME" not found`
    ChardevNotFound(String),
    /// `'pretty' is not compatible with HMP monitors`
    PrettyWithHmp,
    /// `Device 'NAME' is in use`
    DeviceInUse(String),

    /// `fd option is required and must be non-negative`
    AddFdNoFd,
    /// `fd cannot be a standard I/O stream`
    StdStreamFd,
    /// `failed to parse UUID string: wrong format`
    BadUuid,
    /// `Unable to parse FD number TEXT`
    BadFdNumber(String),
    /// fdmon: `invalid timeout 'TEXT': expected a non-negative number of seconds`
    BadTimeout(String),
    /// `-client` is a mode of its own: it has to be the first argument.
    ClientNotFirst,
    /// fdmon: `argument is not valid UTF-8`
    NotUtf8,
    /// fdmon: `fd N is also used by ORIGIN`
    FdAlsoUsed { fd: i32, by: String },
    /// fdmon: `too many options (fdmon takes at most 4096 in one string)`
    TooManyItems,
}

impl fmt::Display for OptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use OptError::*;
        match self {
            InvalidParameter(k) => write!(f, "Invalid parameter '{k}'"),
            ExpectsBool(k) => write!(f, "Parameter '{k}' expects 'on' or 'off'"),
            ExpectsNumber(k) => write!(f, "Parameter '{k}' expects a number"),
            NumberTooLarge { key, value } => {
                write!(f, "Value '{value}' is too large for parameter '{key}'")
            }
            ExpectsSize(k) => write!(
                f,
                "Parameter '{k}' expects a non-negative number below 2^64\n\
                 Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n\
                 and exabytes, respectively."
            ),
            SizeOutOfRange { key, value } => {
                write!(f, "Value '{value}' is out of range for parameter '{key}'")
            }
            ExpectsIdentifierBare => write!(f, "Parameter 'id' expects an identifier"),
            ExpectsIdentifier => write!(
                f,
                "Parameter 'id' expects an identifier\n\
                 Identifiers consist of letters, digits, '-', '.', '_', starting with a letter."
            ),
            DuplicateId { id, list } => write!(f, "Duplicate ID '{id}' for {list}"),
            MissingParameter(k) => write!(f, "Parameter '{k}' is missing"),
            BadEnumValue { key, value } => {
                write!(f, "Parameter '{key}' does not accept value '{value}'")
            }
            NoChardevId => write!(f, "chardev: no id specified"),
            MissingBackend(id) => write!(f, "chardev: \"{id}\" missing backend"),
            InvalidDriverName(n) => write!(f, "'{n}' is not a valid char driver name"),
            TooManyAddresses => {
                write!(f, "None or one of 'path', 'fd' or 'host' option required.")
            }
            NoPortGiven => write!(f, "chardev: socket: no port given"),
            DelayAndNodelay => write!(f, "'delay' and 'nodelay' are mutually exclusive"),
            Spec(e) => write!(f, "{e}"),
            FileNoPath => write!(f, "chardev: file: no filename given"),
            PipeNoPath => write!(f, "chardev: pipe: no device path given"),
            NoSocketAddress => write!(f, "socket chardev needs one of 'path', 'fd' or 'host'"),
            PortWithoutHost => {
                write!(f, "'port' requires 'host': use host=127.0.0.1 (or host=0.0.0.0 for every interface)")
            }
            StdioWithDaemonize => write!(f, "cannot use stdio with -daemonize"),
            StdioInUse => write!(f, "cannot use stdio by multiple character devices"),
            NotValidCharDriver(d) => write!(f, "'{d}' is not a valid char driver"),
            LegacyParseError(d) => write!(f, "parse error: {d}"),
            ChardevNotFound(n) => write!(f, "chardev \"{n}\" not found"),
            PrettyWithHmp => write!(f, "'pretty' is not compatible with HMP monitors"),
            DeviceInUse(n) => write!(f, "Device '{n}' is in use"),
            AddFdNoFd => write!(f, "fd option is required and must be non-negative"),
            StdStreamFd => write!(f, "fd cannot be a standard I/O stream"),
            BadUuid => write!(f, "failed to parse UUID string: wrong format"),
            BadFdNumber(s) => write!(f, "Unable to parse FD number {s}"),
            BadTimeout(s) => write!(f, "invalid timeout '{s}': expected a non-negative number of seconds"),
            ClientNotFirst => write!(f, "-client must be the first argument (fdmon -client ADDR ...)"),
            NotUtf8 => write!(f, "argument is not valid UTF-8"),
            FdAlsoUsed { fd, by } => write!(f, "fd {fd} is also used by {by}"),
            TooManyItems => write!(f, "too many options (fdmon takes at most {MAX_ITEMS} in one string)"),
        }
    }
}

impl std::error::Error for OptError {}

impl From<SpecError> for OptError {
    fn from(e: SpecError) -> OptError {
        OptError::Spec(e)
    }
}
