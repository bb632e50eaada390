//! Every venue error code from the protocol notes (§12), mapped to a category the engine
//! acts on. Unknown codes are kept as [`VenueErrorCode::Unknown`] and count as failures.

/// What the engine should do about a venue error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    /// Transient: the same request may succeed after a short delay (10040, 10041, ...).
    Retryable,
    /// Rate limiting: 10028 trips the breaker; the others mean "slow down".
    RateLimit,
    /// Credentials, token or scope problem: re-authenticate or fix the key.
    Auth,
    /// The order itself was refused (tick, size, funds, post-only, price band, ...).
    OrderReject,
    /// The order or object does not exist or is no longer open.
    NotFound,
    /// Venue-wide condition: maintenance, locks, admin switches.
    VenueUnavailable,
    /// Our request was malformed or used the wrong transport.
    Protocol,
    /// A code not in the table: treated as a failure, never as success.
    Unknown,
}

/// A Deribit error code (protocol §12), with `Unknown` for anything not in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VenueErrorCode {
    /// -32600 `request entity too large`.
    RequestEntityTooLarge,
    /// -32601 `Method not found`.
    MethodNotFound,
    /// -32602 `Invalid params`.
    InvalidParams,
    /// -32700 `Parse error`.
    ParseError,
    /// -32000 `Missing params`.
    MissingParams,
    /// 10000 `authorization_required`.
    AuthorizationRequired,
    /// 10001 `error`.
    Error,
    /// 10002 `qty_too_low`.
    QtyTooLow,
    /// 10003 `order_overlap`.
    OrderOverlap,
    /// 10004 `order_not_found`.
    OrderNotFound,
    /// 10005 `price_too_low`.
    PriceTooLow,
    /// 10006 `price_too_low4idx`.
    PriceTooLow4Idx,
    /// 10007 `price_too_high`.
    PriceTooHigh,
    /// 10008 `price_too_high4idx`.
    PriceTooHigh4Idx,
    /// 10009 `not_enough_funds`.
    NotEnoughFunds,
    /// 10010 `already_closed`.
    AlreadyClosed,
    /// 10011 `price_not_allowed`.
    PriceNotAllowed,
    /// 10012 `book_closed`.
    BookClosed,
    /// 10019 `locked_by_admin`.
    LockedByAdmin,
    /// 10020 `invalid_or_unsupported_instrument`.
    InvalidOrUnsupportedInstrument,
    /// 10021 `invalid_amount`.
    InvalidAmount,
    /// 10023 `invalid_price`.
    InvalidPrice,
    /// 10025 `invalid_order_id`.
    InvalidOrderId,
    /// 10026 `price_precision_exceeded`.
    PricePrecisionExceeded,
    /// 10027 `non_integer_contract_amount`.
    NonIntegerContractAmount,
    /// 10028 `too_many_requests`.
    TooManyRequests,
    /// 10029 `not_owner_of_order`.
    NotOwnerOfOrder,
    /// 10030 `must_be_websocket_request`.
    MustBeWebsocketRequest,
    /// 10031 `invalid_args_for_instrument`.
    InvalidArgsForInstrument,
    /// 10032 `whole_cost_too_low`.
    WholeCostTooLow,
    /// 10034 `trigger_price_too_high`.
    TriggerPriceTooHigh,
    /// 10035 `trigger_price_too_low`.
    TriggerPriceTooLow,
    /// 10040 `retry`.
    Retry,
    /// 10041 `settlement_in_progress`.
    SettlementInProgress,
    /// 10043 `price_wrong_tick`.
    PriceWrongTick,
    /// 10044 `trigger_price_wrong_tick`.
    TriggerPriceWrongTick,
    /// 10047 `matching_engine_queue_full`.
    MatchingEngineQueueFull,
    /// 10049 `cancel_on_disconnect_failed`.
    CancelOnDisconnectFailed,
    /// 10066 `too_many_concurrent_requests`.
    TooManyConcurrentRequests,
    /// 11008 `already_filled`.
    AlreadyFilled,
    /// 11029 `invalid_arguments`.
    InvalidArguments,
    /// 11030 `other_reject`.
    OtherReject,
    /// 11031 `other_error`.
    OtherError,
    /// 11035 `no_more_triggers`.
    NoMoreTriggers,
    /// 11036 `invalid_trigger_price`.
    InvalidTriggerPrice,
    /// 11042 `permission_denied`.
    PermissionDenied,
    /// 11043 `bad_argument`.
    BadArgument,
    /// 11044 `not_open_order`.
    NotOpenOrder,
    /// 11047 `unsupported_arg_combination`.
    UnsupportedArgCombination,
    /// 11049 `bad_arguments`.
    BadArguments,
    /// 11050 `bad_request`.
    BadRequest,
    /// 11051 `system_maintenance`.
    SystemMaintenance,
    /// 11052 `subscribe_error_unsubscribed`.
    SubscribeErrorUnsubscribed,
    /// 11054 `post_only_reject`.
    PostOnlyReject,
    /// 11055 `post_only_not_allowed`.
    PostOnlyNotAllowed,
    /// 11056 `unauthenticated_public_requests_temporarily_disabled`.
    UnauthenticatedPublicRequestsTemporarilyDisabled,
    /// 11094 `internal_server_error`.
    InternalServerError,
    /// 11098 `account_locked`.
    AccountLocked,
    /// 13004 `invalid_credentials`.
    InvalidCredentials,
    /// 13009 `unauthorized`.
    Unauthorized,
    /// 13019 `orderbook_closed`.
    OrderbookClosed,
    /// 13020 `not_found`.
    NotFound,
    /// 13021 `forbidden`.
    Forbidden,
    /// 13025 `method_switched_off_by_admin`.
    MethodSwitchedOffByAdmin,
    /// 13028 `temporarily_unavailable`.
    TemporarilyUnavailable,
    /// 13030 `mmp_trigger`.
    MmpTrigger,
    /// 13032 `non_unique_order_label`.
    NonUniqueOrderLabel,
    /// 13042 `cod_not_enabled`.
    CodNotEnabled,
    /// 13403 `scope_exceeded`.
    ScopeExceeded,
    /// 13503 `unavailable`.
    Unavailable,
    /// 13666 `request_cancelled_by_user`.
    RequestCancelledByUser,
    /// 13777 `replaced`.
    Replaced,
    /// 13778 `raw_subscriptions_not_available_for_unauthorized`.
    RawSubscriptionsNotAvailableForUnauthorized,
    /// 13888 `timed_out`.
    TimedOut,
    /// 13901 `no_more_oto_orders`.
    NoMoreOtoOrders,
    /// A code the table does not know; always a failure.
    Unknown(i64),
}

impl VenueErrorCode {
    /// Every known code, in table order (tests and docs iterate it).
    pub const ALL: &'static [Self] = &[
        Self::RequestEntityTooLarge,
        Self::MethodNotFound,
        Self::InvalidParams,
        Self::ParseError,
        Self::MissingParams,
        Self::AuthorizationRequired,
        Self::Error,
        Self::QtyTooLow,
        Self::OrderOverlap,
        Self::OrderNotFound,
        Self::PriceTooLow,
        Self::PriceTooLow4Idx,
        Self::PriceTooHigh,
        Self::PriceTooHigh4Idx,
        Self::NotEnoughFunds,
        Self::AlreadyClosed,
        Self::PriceNotAllowed,
        Self::BookClosed,
        Self::LockedByAdmin,
        Self::InvalidOrUnsupportedInstrument,
        Self::InvalidAmount,
        Self::InvalidPrice,
        Self::InvalidOrderId,
        Self::PricePrecisionExceeded,
        Self::NonIntegerContractAmount,
        Self::TooManyRequests,
        Self::NotOwnerOfOrder,
        Self::MustBeWebsocketRequest,
        Self::InvalidArgsForInstrument,
        Self::WholeCostTooLow,
        Self::TriggerPriceTooHigh,
        Self::TriggerPriceTooLow,
        Self::Retry,
        Self::SettlementInProgress,
        Self::PriceWrongTick,
        Self::TriggerPriceWrongTick,
        Self::MatchingEngineQueueFull,
        Self::CancelOnDisconnectFailed,
        Self::TooManyConcurrentRequests,
        Self::AlreadyFilled,
        Self::InvalidArguments,
        Self::OtherReject,
        Self::OtherError,
        Self::NoMoreTriggers,
        Self::InvalidTriggerPrice,
        Self::PermissionDenied,
        Self::BadArgument,
        Self::NotOpenOrder,
        Self::UnsupportedArgCombination,
        Self::BadArguments,
        Self::BadRequest,
        Self::SystemMaintenance,
        Self::SubscribeErrorUnsubscribed,
        Self::PostOnlyReject,
        Self::PostOnlyNotAllowed,
        Self::UnauthenticatedPublicRequestsTemporarilyDisabled,
        Self::InternalServerError,
        Self::AccountLocked,
        Self::InvalidCredentials,
        Self::Unauthorized,
        Self::OrderbookClosed,
        Self::NotFound,
        Self::Forbidden,
        Self::MethodSwitchedOffByAdmin,
        Self::TemporarilyUnavailable,
        Self::MmpTrigger,
        Self::NonUniqueOrderLabel,
        Self::CodNotEnabled,
        Self::ScopeExceeded,
        Self::Unavailable,
        Self::RequestCancelledByUser,
        Self::Replaced,
        Self::RawSubscriptionsNotAvailableForUnauthorized,
        Self::TimedOut,
        Self::NoMoreOtoOrders,
    ];

    /// The enum for a wire code.
    #[must_use]
    pub const fn from_code(code: i64) -> Self {
        match code {
            -32600 => Self::RequestEntityTooLarge,
            -32601 => Self::MethodNotFound,
            -32602 => Self::InvalidParams,
            -32700 => Self::ParseError,
            -32000 => Self::MissingParams,
            10000 => Self::AuthorizationRequired,
            10001 => Self::Error,
            10002 => Self::QtyTooLow,
            10003 => Self::OrderOverlap,
            10004 => Self::OrderNotFound,
            10005 => Self::PriceTooLow,
            10006 => Self::PriceTooLow4Idx,
            10007 => Self::PriceTooHigh,
            10008 => Self::PriceTooHigh4Idx,
            10009 => Self::NotEnoughFunds,
            10010 => Self::AlreadyClosed,
            10011 => Self::PriceNotAllowed,
            10012 => Self::BookClosed,
            10019 => Self::LockedByAdmin,
            10020 => Self::InvalidOrUnsupportedInstrument,
            10021 => Self::InvalidAmount,
            10023 => Self::InvalidPrice,
            10025 => Self::InvalidOrderId,
            10026 => Self::PricePrecisionExceeded,
            10027 => Self::NonIntegerContractAmount,
            10028 => Self::TooManyRequests,
            10029 => Self::NotOwnerOfOrder,
            10030 => Self::MustBeWebsocketRequest,
            10031 => Self::InvalidArgsForInstrument,
            10032 => Self::WholeCostTooLow,
            10034 => Self::TriggerPriceTooHigh,
            10035 => Self::TriggerPriceTooLow,
            10040 => Self::Retry,
            10041 => Self::SettlementInProgress,
            10043 => Self::PriceWrongTick,
            10044 => Self::TriggerPriceWrongTick,
            10047 => Self::MatchingEngineQueueFull,
            10049 => Self::CancelOnDisconnectFailed,
            10066 => Self::TooManyConcurrentRequests,
            11008 => Self::AlreadyFilled,
            11029 => Self::InvalidArguments,
            11030 => Self::OtherReject,
            11031 => Self::OtherError,
            11035 => Self::NoMoreTriggers,
            11036 => Self::InvalidTriggerPrice,
            11042 => Self::PermissionDenied,
            11043 => Self::BadArgument,
            11044 => Self::NotOpenOrder,
            11047 => Self::UnsupportedArgCombination,
            11049 => Self::BadArguments,
            11050 => Self::BadRequest,
            11051 => Self::SystemMaintenance,
            11052 => Self::SubscribeErrorUnsubscribed,
            11054 => Self::PostOnlyReject,
            11055 => Self::PostOnlyNotAllowed,
            11056 => Self::UnauthenticatedPublicRequestsTemporarilyDisabled,
            11094 => Self::InternalServerError,
            11098 => Self::AccountLocked,
            13004 => Self::InvalidCredentials,
            13009 => Self::Unauthorized,
            13019 => Self::OrderbookClosed,
            13020 => Self::NotFound,
            13021 => Self::Forbidden,
            13025 => Self::MethodSwitchedOffByAdmin,
            13028 => Self::TemporarilyUnavailable,
            13030 => Self::MmpTrigger,
            13032 => Self::NonUniqueOrderLabel,
            13042 => Self::CodNotEnabled,
            13403 => Self::ScopeExceeded,
            13503 => Self::Unavailable,
            13666 => Self::RequestCancelledByUser,
            13777 => Self::Replaced,
            13778 => Self::RawSubscriptionsNotAvailableForUnauthorized,
            13888 => Self::TimedOut,
            13901 => Self::NoMoreOtoOrders,
            other => Self::Unknown(other),
        }
    }

    /// The wire code.
    #[must_use]
    pub const fn code(self) -> i64 {
        match self {
            Self::RequestEntityTooLarge => -32600,
            Self::MethodNotFound => -32601,
            Self::InvalidParams => -32602,
            Self::ParseError => -32700,
            Self::MissingParams => -32000,
            Self::AuthorizationRequired => 10000,
            Self::Error => 10001,
            Self::QtyTooLow => 10002,
            Self::OrderOverlap => 10003,
            Self::OrderNotFound => 10004,
            Self::PriceTooLow => 10005,
            Self::PriceTooLow4Idx => 10006,
            Self::PriceTooHigh => 10007,
            Self::PriceTooHigh4Idx => 10008,
            Self::NotEnoughFunds => 10009,
            Self::AlreadyClosed => 10010,
            Self::PriceNotAllowed => 10011,
            Self::BookClosed => 10012,
            Self::LockedByAdmin => 10019,
            Self::InvalidOrUnsupportedInstrument => 10020,
            Self::InvalidAmount => 10021,
            Self::InvalidPrice => 10023,
            Self::InvalidOrderId => 10025,
            Self::PricePrecisionExceeded => 10026,
            Self::NonIntegerContractAmount => 10027,
            Self::TooManyRequests => 10028,
            Self::NotOwnerOfOrder => 10029,
            Self::MustBeWebsocketRequest => 10030,
            Self::InvalidArgsForInstrument => 10031,
            Self::WholeCostTooLow => 10032,
            Self::TriggerPriceTooHigh => 10034,
            Self::TriggerPriceTooLow => 10035,
            Self::Retry => 10040,
            Self::SettlementInProgress => 10041,
            Self::PriceWrongTick => 10043,
            Self::TriggerPriceWrongTick => 10044,
            Self::MatchingEngineQueueFull => 10047,
            Self::CancelOnDisconnectFailed => 10049,
            Self::TooManyConcurrentRequests => 10066,
            Self::AlreadyFilled => 11008,
            Self::InvalidArguments => 11029,
            Self::OtherReject => 11030,
            Self::OtherError => 11031,
            Self::NoMoreTriggers => 11035,
            Self::InvalidTriggerPrice => 11036,
            Self::PermissionDenied => 11042,
            Self::BadArgument => 11043,
            Self::NotOpenOrder => 11044,
            Self::UnsupportedArgCombination => 11047,
            Self::BadArguments => 11049,
            Self::BadRequest => 11050,
            Self::SystemMaintenance => 11051,
            Self::SubscribeErrorUnsubscribed => 11052,
            Self::PostOnlyReject => 11054,
            Self::PostOnlyNotAllowed => 11055,
            Self::UnauthenticatedPublicRequestsTemporarilyDisabled => 11056,
            Self::InternalServerError => 11094,
            Self::AccountLocked => 11098,
            Self::InvalidCredentials => 13004,
            Self::Unauthorized => 13009,
            Self::OrderbookClosed => 13019,
            Self::NotFound => 13020,
            Self::Forbidden => 13021,
            Self::MethodSwitchedOffByAdmin => 13025,
            Self::TemporarilyUnavailable => 13028,
            Self::MmpTrigger => 13030,
            Self::NonUniqueOrderLabel => 13032,
            Self::CodNotEnabled => 13042,
            Self::ScopeExceeded => 13403,
            Self::Unavailable => 13503,
            Self::RequestCancelledByUser => 13666,
            Self::Replaced => 13777,
            Self::RawSubscriptionsNotAvailableForUnauthorized => 13778,
            Self::TimedOut => 13888,
            Self::NoMoreOtoOrders => 13901,
            Self::Unknown(c) => c,
        }
    }

    /// The venue's message keyword (the prefix before any `<limit>` text).
    #[must_use]
    pub const fn message(self) -> &'static str {
        match self {
            Self::RequestEntityTooLarge => "request entity too large",
            Self::MethodNotFound => "Method not found",
            Self::InvalidParams => "Invalid params",
            Self::ParseError => "Parse error",
            Self::MissingParams => "Missing params",
            Self::AuthorizationRequired => "authorization_required",
            Self::Error => "error",
            Self::QtyTooLow => "qty_too_low",
            Self::OrderOverlap => "order_overlap",
            Self::OrderNotFound => "order_not_found",
            Self::PriceTooLow => "price_too_low",
            Self::PriceTooLow4Idx => "price_too_low4idx",
            Self::PriceTooHigh => "price_too_high",
            Self::PriceTooHigh4Idx => "price_too_high4idx",
            Self::NotEnoughFunds => "not_enough_funds",
            Self::AlreadyClosed => "already_closed",
            Self::PriceNotAllowed => "price_not_allowed",
            Self::BookClosed => "book_closed",
            Self::LockedByAdmin => "locked_by_admin",
            Self::InvalidOrUnsupportedInstrument => "invalid_or_unsupported_instrument",
            Self::InvalidAmount => "invalid_amount",
            Self::InvalidPrice => "invalid_price",
            Self::InvalidOrderId => "invalid_order_id",
            Self::PricePrecisionExceeded => "price_precision_exceeded",
            Self::NonIntegerContractAmount => "non_integer_contract_amount",
            Self::TooManyRequests => "too_many_requests",
            Self::NotOwnerOfOrder => "not_owner_of_order",
            Self::MustBeWebsocketRequest => "must_be_websocket_request",
            Self::InvalidArgsForInstrument => "invalid_args_for_instrument",
            Self::WholeCostTooLow => "whole_cost_too_low",
            Self::TriggerPriceTooHigh => "trigger_price_too_high",
            Self::TriggerPriceTooLow => "trigger_price_too_low",
            Self::Retry => "retry",
            Self::SettlementInProgress => "settlement_in_progress",
            Self::PriceWrongTick => "price_wrong_tick",
            Self::TriggerPriceWrongTick => "trigger_price_wrong_tick",
            Self::MatchingEngineQueueFull => "matching_engine_queue_full",
            Self::CancelOnDisconnectFailed => "cancel_on_disconnect_failed",
            Self::TooManyConcurrentRequests => "too_many_concurrent_requests",
            Self::AlreadyFilled => "already_filled",
            Self::InvalidArguments => "invalid_arguments",
            Self::OtherReject => "other_reject",
            Self::OtherError => "other_error",
            Self::NoMoreTriggers => "no_more_triggers",
            Self::InvalidTriggerPrice => "invalid_trigger_price",
            Self::PermissionDenied => "permission_denied",
            Self::BadArgument => "bad_argument",
            Self::NotOpenOrder => "not_open_order",
            Self::UnsupportedArgCombination => "unsupported_arg_combination",
            Self::BadArguments => "bad_arguments",
            Self::BadRequest => "bad_request",
            Self::SystemMaintenance => "system_maintenance",
            Self::SubscribeErrorUnsubscribed => "subscribe_error_unsubscribed",
            Self::PostOnlyReject => "post_only_reject",
            Self::PostOnlyNotAllowed => "post_only_not_allowed",
            Self::UnauthenticatedPublicRequestsTemporarilyDisabled => {
                "unauthenticated_public_requests_temporarily_disabled"
            }
            Self::InternalServerError => "internal_server_error",
            Self::AccountLocked => "account_locked",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Unauthorized => "unauthorized",
            Self::OrderbookClosed => "orderbook_closed",
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::MethodSwitchedOffByAdmin => "method_switched_off_by_admin",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::MmpTrigger => "mmp_trigger",
            Self::NonUniqueOrderLabel => "non_unique_order_label",
            Self::CodNotEnabled => "cod_not_enabled",
            Self::ScopeExceeded => "scope_exceeded",
            Self::Unavailable => "unavailable",
            Self::RequestCancelledByUser => "request_cancelled_by_user",
            Self::Replaced => "replaced",
            Self::RawSubscriptionsNotAvailableForUnauthorized => {
                "raw_subscriptions_not_available_for_unauthorized"
            }
            Self::TimedOut => "timed_out",
            Self::NoMoreOtoOrders => "no_more_oto_orders",
            Self::Unknown(_) => "unknown",
        }
    }

    /// The upper-snake name used in logs and `stoic decode` output.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::RequestEntityTooLarge => "REQUEST_ENTITY_TOO_LARGE",
            Self::MethodNotFound => "METHOD_NOT_FOUND",
            Self::InvalidParams => "INVALID_PARAMS",
            Self::ParseError => "PARSE_ERROR",
            Self::MissingParams => "MISSING_PARAMS",
            Self::AuthorizationRequired => "AUTHORIZATION_REQUIRED",
            Self::Error => "ERROR",
            Self::QtyTooLow => "QTY_TOO_LOW",
            Self::OrderOverlap => "ORDER_OVERLAP",
            Self::OrderNotFound => "ORDER_NOT_FOUND",
            Self::PriceTooLow => "PRICE_TOO_LOW",
            Self::PriceTooLow4Idx => "PRICE_TOO_LOW4_IDX",
            Self::PriceTooHigh => "PRICE_TOO_HIGH",
            Self::PriceTooHigh4Idx => "PRICE_TOO_HIGH4_IDX",
            Self::NotEnoughFunds => "NOT_ENOUGH_FUNDS",
            Self::AlreadyClosed => "ALREADY_CLOSED",
            Self::PriceNotAllowed => "PRICE_NOT_ALLOWED",
            Self::BookClosed => "BOOK_CLOSED",
            Self::LockedByAdmin => "LOCKED_BY_ADMIN",
            Self::InvalidOrUnsupportedInstrument => "INVALID_OR_UNSUPPORTED_INSTRUMENT",
            Self::InvalidAmount => "INVALID_AMOUNT",
            Self::InvalidPrice => "INVALID_PRICE",
            Self::InvalidOrderId => "INVALID_ORDER_ID",
            Self::PricePrecisionExceeded => "PRICE_PRECISION_EXCEEDED",
            Self::NonIntegerContractAmount => "NON_INTEGER_CONTRACT_AMOUNT",
            Self::TooManyRequests => "TOO_MANY_REQUESTS",
            Self::NotOwnerOfOrder => "NOT_OWNER_OF_ORDER",
            Self::MustBeWebsocketRequest => "MUST_BE_WEBSOCKET_REQUEST",
            Self::InvalidArgsForInstrument => "INVALID_ARGS_FOR_INSTRUMENT",
            Self::WholeCostTooLow => "WHOLE_COST_TOO_LOW",
            Self::TriggerPriceTooHigh => "TRIGGER_PRICE_TOO_HIGH",
            Self::TriggerPriceTooLow => "TRIGGER_PRICE_TOO_LOW",
            Self::Retry => "RETRY",
            Self::SettlementInProgress => "SETTLEMENT_IN_PROGRESS",
            Self::PriceWrongTick => "PRICE_WRONG_TICK",
            Self::TriggerPriceWrongTick => "TRIGGER_PRICE_WRONG_TICK",
            Self::MatchingEngineQueueFull => "MATCHING_ENGINE_QUEUE_FULL",
            Self::CancelOnDisconnectFailed => "CANCEL_ON_DISCONNECT_FAILED",
            Self::TooManyConcurrentRequests => "TOO_MANY_CONCURRENT_REQUESTS",
            Self::AlreadyFilled => "ALREADY_FILLED",
            Self::InvalidArguments => "INVALID_ARGUMENTS",
            Self::OtherReject => "OTHER_REJECT",
            Self::OtherError => "OTHER_ERROR",
            Self::NoMoreTriggers => "NO_MORE_TRIGGERS",
            Self::InvalidTriggerPrice => "INVALID_TRIGGER_PRICE",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::BadArgument => "BAD_ARGUMENT",
            Self::NotOpenOrder => "NOT_OPEN_ORDER",
            Self::UnsupportedArgCombination => "UNSUPPORTED_ARG_COMBINATION",
            Self::BadArguments => "BAD_ARGUMENTS",
            Self::BadRequest => "BAD_REQUEST",
            Self::SystemMaintenance => "SYSTEM_MAINTENANCE",
            Self::SubscribeErrorUnsubscribed => "SUBSCRIBE_ERROR_UNSUBSCRIBED",
            Self::PostOnlyReject => "POST_ONLY_REJECT",
            Self::PostOnlyNotAllowed => "POST_ONLY_NOT_ALLOWED",
            Self::UnauthenticatedPublicRequestsTemporarilyDisabled => {
                "UNAUTHENTICATED_PUBLIC_REQUESTS_TEMPORARILY_DISABLED"
            }
            Self::InternalServerError => "INTERNAL_SERVER_ERROR",
            Self::AccountLocked => "ACCOUNT_LOCKED",
            Self::InvalidCredentials => "INVALID_CREDENTIALS",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::OrderbookClosed => "ORDERBOOK_CLOSED",
            Self::NotFound => "NOT_FOUND",
            Self::Forbidden => "FORBIDDEN",
            Self::MethodSwitchedOffByAdmin => "METHOD_SWITCHED_OFF_BY_ADMIN",
            Self::TemporarilyUnavailable => "TEMPORARILY_UNAVAILABLE",
            Self::MmpTrigger => "MMP_TRIGGER",
            Self::NonUniqueOrderLabel => "NON_UNIQUE_ORDER_LABEL",
            Self::CodNotEnabled => "COD_NOT_ENABLED",
            Self::ScopeExceeded => "SCOPE_EXCEEDED",
            Self::Unavailable => "UNAVAILABLE",
            Self::RequestCancelledByUser => "REQUEST_CANCELLED_BY_USER",
            Self::Replaced => "REPLACED",
            Self::RawSubscriptionsNotAvailableForUnauthorized => {
                "RAW_SUBSCRIPTIONS_NOT_AVAILABLE_FOR_UNAUTHORIZED"
            }
            Self::TimedOut => "TIMED_OUT",
            Self::NoMoreOtoOrders => "NO_MORE_OTO_ORDERS",
            Self::Unknown(_) => "UNKNOWN",
        }
    }

    /// What to do about it.
    #[must_use]
    pub const fn category(self) -> ErrorCategory {
        match self {
            Self::RequestEntityTooLarge
            | Self::MethodNotFound
            | Self::InvalidParams
            | Self::ParseError
            | Self::MissingParams
            | Self::MustBeWebsocketRequest
            | Self::BadRequest
            | Self::SubscribeErrorUnsubscribed
            | Self::CodNotEnabled => ErrorCategory::Protocol,
            Self::AuthorizationRequired
            | Self::PermissionDenied
            | Self::InvalidCredentials
            | Self::Unauthorized
            | Self::Forbidden
            | Self::ScopeExceeded
            | Self::RawSubscriptionsNotAvailableForUnauthorized => ErrorCategory::Auth,
            Self::Error
            | Self::Retry
            | Self::SettlementInProgress
            | Self::CancelOnDisconnectFailed
            | Self::InternalServerError
            | Self::TimedOut => ErrorCategory::Retryable,
            Self::QtyTooLow
            | Self::OrderOverlap
            | Self::PriceTooLow
            | Self::PriceTooLow4Idx
            | Self::PriceTooHigh
            | Self::PriceTooHigh4Idx
            | Self::NotEnoughFunds
            | Self::PriceNotAllowed
            | Self::BookClosed
            | Self::InvalidOrUnsupportedInstrument
            | Self::InvalidAmount
            | Self::InvalidPrice
            | Self::InvalidOrderId
            | Self::PricePrecisionExceeded
            | Self::NonIntegerContractAmount
            | Self::NotOwnerOfOrder
            | Self::InvalidArgsForInstrument
            | Self::WholeCostTooLow
            | Self::TriggerPriceTooHigh
            | Self::TriggerPriceTooLow
            | Self::PriceWrongTick
            | Self::TriggerPriceWrongTick
            | Self::InvalidArguments
            | Self::OtherReject
            | Self::OtherError
            | Self::NoMoreTriggers
            | Self::InvalidTriggerPrice
            | Self::BadArgument
            | Self::UnsupportedArgCombination
            | Self::BadArguments
            | Self::PostOnlyReject
            | Self::PostOnlyNotAllowed
            | Self::OrderbookClosed
            | Self::MmpTrigger
            | Self::NonUniqueOrderLabel
            | Self::RequestCancelledByUser
            | Self::Replaced
            | Self::NoMoreOtoOrders => ErrorCategory::OrderReject,
            Self::OrderNotFound
            | Self::AlreadyClosed
            | Self::AlreadyFilled
            | Self::NotOpenOrder
            | Self::NotFound => ErrorCategory::NotFound,
            Self::LockedByAdmin
            | Self::SystemMaintenance
            | Self::UnauthenticatedPublicRequestsTemporarilyDisabled
            | Self::AccountLocked
            | Self::MethodSwitchedOffByAdmin
            | Self::TemporarilyUnavailable
            | Self::Unavailable => ErrorCategory::VenueUnavailable,
            Self::TooManyRequests
            | Self::MatchingEngineQueueFull
            | Self::TooManyConcurrentRequests => ErrorCategory::RateLimit,
            Self::Unknown(_) => ErrorCategory::Unknown,
        }
    }

    /// True when retrying the same request later may succeed.
    #[must_use]
    pub const fn is_retryable(self) -> bool {
        matches!(self.category(), ErrorCategory::Retryable)
    }

    /// True for 10028: the venue ends the session right after sending it.
    #[must_use]
    pub const fn terminates_session(self) -> bool {
        matches!(self, Self::TooManyRequests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_is_unique() {
        let mut seen = std::collections::HashSet::new();
        for &c in VenueErrorCode::ALL {
            assert!(seen.insert(c.code()), "duplicate {}", c.code());
            assert_eq!(VenueErrorCode::from_code(c.code()), c);
            assert_ne!(c.category(), ErrorCategory::Unknown);
            assert_ne!(c.name(), "UNKNOWN");
        }
        assert_eq!(seen.len(), 75);
    }

    #[test]
    fn categories_match_the_protocol_notes() {
        use VenueErrorCode as V;
        assert_eq!(V::from_code(10028).category(), ErrorCategory::RateLimit);
        assert!(V::from_code(10028).terminates_session());
        assert_eq!(V::from_code(10043), V::PriceWrongTick);
        assert_eq!(V::PriceWrongTick.category(), ErrorCategory::OrderReject);
        assert_eq!(V::from_code(11054).category(), ErrorCategory::OrderReject);
        assert_eq!(V::from_code(10009).category(), ErrorCategory::OrderReject);
        assert!(V::from_code(10041).is_retryable());
        assert_eq!(V::from_code(11051).category(), ErrorCategory::VenueUnavailable);
        assert_eq!(V::from_code(13009).category(), ErrorCategory::Auth);
        assert_eq!(V::from_code(10043).name(), "PRICE_WRONG_TICK");
    }

    #[test]
    fn unknown_codes_are_failures() {
        let u = VenueErrorCode::from_code(424_242);
        assert_eq!(u, VenueErrorCode::Unknown(424_242));
        assert_eq!(u.code(), 424_242);
        assert_eq!(u.category(), ErrorCategory::Unknown);
        assert!(!u.is_retryable());
    }
}
