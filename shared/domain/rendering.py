"""Rendering message templates: sandboxed Jinja2, strict about undefined names, bounded.

Templates are written by marketers, so they run in Jinja's
:class:`~jinja2.sandbox.SandboxedEnvironment` (no reach into Python internals),
HTML parts are autoescaped, and a name the template uses but the context lacks
is an error rather than an empty string.

A render is bounded, so that no template can take the process down:

- its output: at most :class:`RenderLimits` bytes (UTF-8) per message, per channel,
  counted as the template produces it (``generate()``) and stopped at the limit;
- up front, the sandbox refuses what would blow up in a single step: a power or a
  product of numbers too large to compute quickly, a string or list repeated,
  concatenated (``+`` and ``~``), joined, padded, wrapped or formatted (``%``,
  ``format``, ``str.format`` with its widths and precisions, nested ones too) past the
  output limit, a list or dict that would print (``{{ }}``, ``pprint``, ``string``...)
  past it, a ``sum`` of many lists, and ranges of more than :data:`MAX_RANGE_ITEMS`
  numbers in all. Jinja's ``lipsum``, ``cycler`` and ``joiner`` globals are not there.

Both raise :class:`RenderTooCostly` (a :class:`RenderError` naming the ``limit``).
What cannot be refused up front (a loop that just runs long) is bounded in time by
the renderer that runs these functions (``shared.ports.rendering``): in a worker
process, stopped at the deadline.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from jinja2 import StrictUndefined, Template, TemplateError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment, SandboxedEscapeFormatter, SandboxedFormatter
from markupsafe import Markup

from shared.domain.push import PushContent, PushContentError
from shared.domain.sms import SmsLength, SmsTooLong, sms_length

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_NUMBER_BITS",
    "MAX_RANGE_ITEMS",
    "AnyTemplate",
    "BoundedEnvironment",
    "CostlyLimit",
    "EmailTemplate",
    "PushTemplate",
    "RenderError",
    "RenderLimits",
    "RenderTooCostly",
    "RenderedEmail",
    "RenderedMessage",
    "RenderedSms",
    "SmsTemplate",
    "render_email",
    "render_message",
    "render_push",
    "render_sms",
    "template_line",
]

MAX_NUMBER_BITS = 16_384
"""The largest whole number a template may make (about 4,900 digits): Python prints no
more than 4,300 digits anyway, and a larger power or product can take seconds."""
MAX_RANGE_ITEMS = 100_000
"""Numbers that the ``range()`` of one render may count, every loop together."""

CostlyLimit = Literal["time", "output"]


class RenderError(ValueError):
    """A template that does not render: ``part`` names which one, ``line`` where."""

    def __init__(self, part: str, message: str, line: int | None = None) -> None:
        where = f" (line {line})" if line else ""
        super().__init__(f"{part}{where}: {message}")
        self.part = part
        self.line = line
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:  # pickled back from a render worker
        return (type(self), (self.part, self.message, self.line))


class RenderTooCostly(RenderError):
    """A render over a limit: ``limit`` is ``time`` (it would take too long) or
    ``output`` (it would write, or hold, too much)."""

    def __init__(
        self, part: str, message: str, limit: CostlyLimit, line: int | None = None
    ) -> None:
        super().__init__(part, message, line)
        self.limit: CostlyLimit = limit

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.part, self.message, self.limit, self.line))


@dataclass(frozen=True)
class RenderLimits:
    """The most one rendered message may hold, in UTF-8 bytes, every part together."""

    email: int = 256 * 1024
    sms: int = 2 * 1024
    push: int = 4 * 1024

    def __post_init__(self) -> None:
        if min(self.email, self.sms, self.push) < 1:
            raise ValueError("render output limits must be at least 1 byte")


DEFAULT_LIMITS = RenderLimits()


class _Costly(Exception):
    def __init__(self, limit: CostlyLimit, message: str) -> None:
        super().__init__(message)
        self.limit: CostlyLimit = limit
        self.message = message


@dataclass
class _Budget:
    """What is left of one render's limits."""

    output: int
    range_items: int = MAX_RANGE_ITEMS
    limit: int = field(init=False)

    def __post_init__(self) -> None:
        self.limit = self.output

    def room(self, size: int, what: str) -> None:
        """Refuse to make ``what`` of ``size`` (characters or items) past the output left."""
        if size > self.output:
            raise _Costly(
                "output",
                f"{what} would be {size} long: past the output limit of {self.limit} bytes",
            )

    def spend(self, size: int) -> None:
        self.output -= size
        if self.output < 0:
            raise _Costly("output", f"the output is over the limit of {self.limit} bytes")


_BUDGET: ContextVar[_Budget | None] = ContextVar("render_budget", default=None)


def _budget() -> _Budget:
    found = _BUDGET.get()
    return found if found is not None else _Budget(DEFAULT_LIMITS.email)


_CONTAINERS = (list, tuple, dict, set, frozenset)
MAX_SUMMED_LISTS = 1000
"""Lists one ``sum`` may add together: each addition copies what came before."""


def _sized(value: Any) -> bool:
    return isinstance(value, (str, bytes, *_CONTAINERS))


def _printed(value: Any, sizes: dict[int, int] | None = None) -> int:
    """About how many characters ``value`` prints as: a container's items counted as
    often as they occur (in time linear in the distinct objects, a cycle once)."""
    if isinstance(value, (str, bytes)):
        return len(value) + 2
    if not isinstance(value, _CONTAINERS):
        return 1
    sizes = {} if sizes is None else sizes
    known = sizes.get(id(value))
    if known is not None:
        return known
    sizes[id(value)] = 5  # what a cycle prints as: [...]
    items: Iterable[Any] = value
    if isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    size = 2 + sum(_printed(item, sizes) + 2 for item in items)
    sizes[id(value)] = size
    return size


def _length(value: Any) -> int:
    """What a value counts against the output when made: its text, or how it prints."""
    return len(value) if isinstance(value, (str, bytes)) else _printed(value)


def _check_printed(value: Any, what: str) -> None:
    if isinstance(value, _CONTAINERS):
        _budget().room(_printed(value), what)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_number(value: Any) -> None:
    if _whole(value) and value.bit_length() > MAX_NUMBER_BITS:
        raise _Costly("time", f"a number over {MAX_NUMBER_BITS} bits is not computed")


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_percent(template: str, args: Any) -> None:
    """``template % args`` refused when a width or precision is past the output left."""
    budget = _budget()
    values = args if isinstance(args, tuple) else (args,)
    for value in values if isinstance(args, tuple) else (args,):
        _check_printed(value, "a formatted value")
    for spec in _PERCENT_SPEC.finditer(template):
        for size in spec.groups():
            if size is not None and size != "*":
                # more than 9 digits: surely over, and never read as a number
                budget.room(int(size) if len(size) <= 9 else 10**9, "a formatted value")
    if "*" in template:
        for value in values:
            if _whole(value):
                budget.room(abs(value), "a formatted value")


def _check_binop(operator: str, left: Any, right: Any) -> None:
    budget = _budget()
    if operator == "**" and _whole(left) and _whole(right) and right > 0 and abs(left) > 1:
        if right > MAX_NUMBER_BITS or right * left.bit_length() > MAX_NUMBER_BITS:
            raise _Costly("time", f"{left} ** {right} is over {MAX_NUMBER_BITS} bits: not computed")
    elif operator == "*":
        if _whole(left) and _whole(right):
            if left.bit_length() + right.bit_length() > MAX_NUMBER_BITS:
                raise _Costly("time", f"a product over {MAX_NUMBER_BITS} bits is not computed")
        elif _sized(left) and _whole(right):
            budget.room(_length(left) * right, "the repetition")
        elif _whole(left) and _sized(right):
            budget.room(left * _length(right), "the repetition")
    elif operator == "+" and _sized(left) and _sized(right):
        budget.room(_length(left) + _length(right), "the concatenation")
    elif operator == "%" and isinstance(left, str):
        _check_percent(left, right)


def _check_call(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """The methods of text and numbers that make long values from a short call."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    budget = _budget()
    if isinstance(owner, str):
        if name in ("ljust", "rjust", "center", "zfill") and args and _whole(args[0]):
            budget.room(args[0], f"{name}()")
        elif name == "expandtabs":
            size = args[0] if args and _whole(args[0]) else kwargs.get("tabsize", 8)
            if _whole(size):
                budget.room(len(owner) + owner.count("\t") * size, "expandtabs()")
        elif name == "replace" and len(args) >= 2:
            _check_replace(owner, args[0], args[1])
        elif name == "join" and args and isinstance(args[0], (list, tuple, str)):
            _check_join(owner, args[0])
    elif _whole(owner) and name == "to_bytes":
        size = args[0] if args else kwargs.get("length", 1)
        if _whole(size):
            budget.room(size, "to_bytes()")


def _check_replace(text: str, old: Any, new: Any) -> None:
    if isinstance(old, str) and isinstance(new, str) and len(new) > len(old):
        count = text.count(old) if old else len(text) + 1
        _budget().room(len(text) + count * (len(new) - len(old)), "replace()")


def _check_join(separator: str, items: list[Any] | tuple[Any, ...] | str) -> None:
    size = len(separator) * max(len(items) - 1, 0)
    if isinstance(items, str):
        size += len(items)
    else:
        sizes: dict[int, int] = {}
        size += sum(len(i) if isinstance(i, str) else _printed(i, sizes) for i in items)
    _budget().room(size, "join()")


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    budget = _budget()
    budget.range_items -= len(numbers)
    if budget.range_items < 0:
        raise _Costly("time", f"the loops count over {MAX_RANGE_ITEMS} numbers in all")
    return numbers


def _checked_filter(
    name: str, check: Callable[..., Any], filters: Mapping[str, Callable[..., Any]]
) -> Callable[..., Any]:
    """``filters[name]`` run after ``check`` of its arguments; a check that returns a value
    hands the filter that in place of its input (an iterable made into the list checked)."""
    original = filters[name]
    # A filter marked pass_context / pass_eval_context / pass_environment gets that first.
    skip = 1 if getattr(original, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(original)
    def filtered(*args: Any, **kwargs: Any) -> Any:
        if name not in ("join", "sum") and len(args) > skip:  # these count their items
            _check_printed(args[skip], f"|{name}")  # it makes text of a list or dict too
        checked = check(*args[skip:], **kwargs)
        if checked is not None:
            args = (*args[:skip], checked, *args[skip + 1 :])
        return original(*args, **kwargs)

    return filtered


def _format_filter(value: Any, *args: Any, **kwargs: Any) -> None:
    if isinstance(value, str):
        _check_percent(value, kwargs or args)


def _center_filter(value: Any, width: Any = 80) -> None:
    if _whole(width):
        _budget().room(width, "center")


def _indent_filter(value: Any, width: Any = 4, *_args: Any, **_kwargs: Any) -> None:
    size = width if _whole(width) else len(width) if isinstance(width, str) else 0
    text = value if isinstance(value, str) else ""
    _budget().room(len(text) + (text.count("\n") + 1) * size, "indent")


def _batch_filter(value: Any, linecount: Any, *_args: Any, **_kwargs: Any) -> None:
    if _whole(linecount):
        _budget().room(linecount, "batch")


def _replace_filter(value: Any, old: Any, new: Any, *_args: Any, **_kwargs: Any) -> None:
    if isinstance(value, str):
        _check_replace(value, old, new)


def _join_filter(value: Any, d: Any = "", *_args: Any, **_kwargs: Any) -> Any:
    items = value if isinstance(value, (list, tuple)) else _listed(value)
    if isinstance(d, str) and items is not None:
        _check_join(d, items)
    return items


def _listed(value: Any) -> list[Any] | None:
    """An iterable (not a mapping) as a list, so that it is checked as it will be used."""
    if isinstance(value, (str, Iterator, set, frozenset)):  # a generator is an Iterator
        return list(value)
    return None


def _wordwrap_filter(
    s: Any, width: Any = 79, _break_long: Any = True, wrapstring: Any = None, *_: Any, **kw: Any
) -> None:
    wrapstring = kw.get("wrapstring", wrapstring)
    width = kw.get("width", width)
    if isinstance(s, str) and _whole(width):
        lines = len(s) // max(width, 1) + s.count("\n") + 1
        joint = len(wrapstring) if isinstance(wrapstring, str) else 2
        _budget().room(len(s) + lines * joint, "wordwrap")


def _sum_filter(iterable: Any, attribute: Any = None, start: Any = 0, **kwargs: Any) -> Any:
    start = kwargs.get("start", start)
    if isinstance(start, (int, float)):
        return None
    items = list(iterable)
    if len(items) > MAX_SUMMED_LISTS:
        raise _Costly(
            "time", f"a sum of {len(items)} lists would be too slow: at most {MAX_SUMMED_LISTS}"
        )
    sizes: dict[int, int] = {}
    _budget().room(_printed(start, sizes) + sum(_printed(i, sizes) for i in items), "sum")
    return items


def _printed_filter(value: Any, *_args: Any, **_kwargs: Any) -> None:
    _check_printed(value, "the printed value")


_PRINTING_FILTERS = (
    "pprint",
    "string",
    "tojson",
    "e",
    "escape",
    "forceescape",
    "safe",
    "urlencode",
    "trim",
    "upper",
    "lower",
    "title",
    "capitalize",
    "truncate",
    "striptags",
    "urlize",
)
"""Filters that make text of any value, a list or dict too."""

_FORMAT_SPEC = re.compile(
    r"(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>\d+)?[,_]?(?:\.(?P<precision>\d+))?.?", re.DOTALL
)


class _Bounded:
    """``str.format`` with each field's width, precision and value checked first, and
    every field made counted against the output left."""

    made = 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        budget = _budget()
        _check_printed(value, "a formatted value")
        found = _FORMAT_SPEC.fullmatch(format_spec)
        for size in found.groups() if found else ():
            if size is not None:
                budget.room(int(size) if len(size) <= 9 else 10**9, "a formatted value")
        field = super().format_field(value, format_spec)  # type: ignore[misc]
        self.made += len(field)
        budget.room(self.made, "the formatted text")
        return field


class _BoundedFormatter(_Bounded, SandboxedFormatter):
    pass


class _BoundedEscapeFormatter(_Bounded, SandboxedEscapeFormatter):
    pass


class _BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator, but ``a ~ b`` checks the length it would make first."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"{join}(environment.concatenated((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(")))")


def _concatenated(parts: tuple[Any, ...]) -> tuple[Any, ...]:
    sizes: dict[int, int] = {}
    size = sum(
        len(part) if isinstance(part, str) else _printed(part, sizes) if _sized(part) else 0
        for part in parts
    )
    _budget().room(size, "the concatenation")
    return parts


def _finalized(value: Any) -> Any:
    """What ``{{ }}`` prints, checked first if it is a list or dict."""
    _check_printed(value, "the printed value")
    return value


class BoundedEnvironment(SandboxedEnvironment):
    """The sandbox that refuses, before computing them, values too large for a message."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _BoundedCodeGenerator

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("finalize", _finalized)
        super().__init__(*args, **kwargs)
        self.globals["range"] = _bounded_range
        for name in ("lipsum", "cycler", "joiner"):  # no ready-made template uses them
            self.globals.pop(name, None)
        checks: list[tuple[str, Callable[..., Any]]] = [
            (name, _printed_filter) for name in _PRINTING_FILTERS
        ]
        checks += [
            ("format", _format_filter),
            ("center", _center_filter),
            ("indent", _indent_filter),
            ("batch", _batch_filter),
            ("replace", _replace_filter),
            ("join", _join_filter),
            ("wordwrap", _wordwrap_filter),
            ("sum", _sum_filter),
        ]
        for name, check in checks:
            self.filters[name] = _checked_filter(name, check, self.filters)

    concatenated = staticmethod(_concatenated)
    """What ``~`` calls (see :class:`_BoundedCodeGenerator`)."""

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` and ``format_map`` as the sandbox has them, bounded (``_Bounded``)."""
        if super().wrap_str_format(value) is None:
            return None
        text: str = value.__self__
        is_map = value.__name__ == "format_map"

        def bounded(*args: Any, **kwargs: Any) -> str:
            formatter: SandboxedFormatter = (
                _BoundedEscapeFormatter(self, escape=text.escape)
                if isinstance(text, Markup)
                else _BoundedFormatter(self)
            )
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                return type(text)(formatter.vformat(text, (), args[0]))
            return type(text)(formatter.vformat(text, args, kwargs))

        return functools.update_wrapper(bounded, value)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        result = self.binop_table[operator](left, right)
        _check_number(result)
        return result

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_call(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)


_HTML = BoundedEnvironment(autoescape=True, undefined=StrictUndefined)
_TEXT = BoundedEnvironment(autoescape=False, undefined=StrictUndefined)


@dataclass(frozen=True)
class EmailTemplate:
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


@functools.lru_cache(maxsize=512)
def _compiled(env: SandboxedEnvironment, source: str) -> Template:
    """``source`` compiled once: compiling takes far longer than rendering."""
    return env.from_string(source)


def template_line(trace: TracebackType | None) -> int | None:
    """The template line a failure happened on, from its traceback's template frames."""
    line = None
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<template>":
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


def _generated(chunks: Iterator[str], budget: _Budget) -> str:
    """The output, stopped as soon as it is over the budget."""
    out = []
    for chunk in chunks:
        size = len(chunk)  # characters: at most its bytes, and cheap to count
        if size > budget.output:
            budget.spend(size)
        if not chunk.isascii():
            size = len(chunk.encode("utf-8", "surrogatepass"))
        budget.spend(size)
        out.append(chunk)
    return "".join(out)


def _render(
    env: SandboxedEnvironment, part: str, source: str, context: Mapping[str, Any], budget: _Budget
) -> str:
    token = _BUDGET.set(budget)
    try:
        return _generated(_compiled(env, source).generate(context), budget)
    except _Costly as exc:
        raise RenderTooCostly(
            part, exc.message, exc.limit, template_line(exc.__traceback__)
        ) from None
    except MemoryError:
        raise RenderTooCostly(part, "needs more memory than a render may use", "output") from None
    except RecursionError:
        raise RenderTooCostly(part, "nests too deep to render", "time") from None
    except TemplateError as exc:
        # Jinja tells the line of a syntax error; of a failure while rendering, the
        # traceback's template frame does (never rendered again to find it).
        line = getattr(exc, "lineno", None) or template_line(exc.__traceback__)
        raise RenderError(part, exc.message or type(exc).__name__, line) from None
    except Exception as exc:  # any failure of a marketer's template is theirs to fix
        line = template_line(exc.__traceback__)
        raise RenderError(part, f"{type(exc).__name__}: {exc}", line) from None
    finally:
        _BUDGET.reset(token)


def render_email(
    template: EmailTemplate, context: Mapping[str, Any], *, limits: RenderLimits = DEFAULT_LIMITS
) -> RenderedEmail:
    """Render every part of ``template`` with ``context``; raise :class:`RenderError`
    (:class:`RenderTooCostly` past ``limits.email`` bytes, every part together)."""
    budget = _Budget(limits.email)
    subject = _render(_TEXT, "subject", template.subject, context, budget)
    return RenderedEmail(
        subject=" ".join(subject.split()),
        html=_render(_HTML, "html", template.html, context, budget),
        text=_render(_TEXT, "text", template.text, context, budget),
    )


@dataclass(frozen=True)
class SmsTemplate:
    text: str


@dataclass(frozen=True)
class RenderedSms:
    text: str
    length: SmsLength


def render_sms(
    template: SmsTemplate,
    context: Mapping[str, Any],
    *,
    max_segments: int | None = None,
    limits: RenderLimits = DEFAULT_LIMITS,
) -> RenderedSms:
    """Render ``template``'s text, trimmed; :class:`RenderError` for a template that does not
    render or a text over ``max_segments`` segments (the part is ``text``);
    :class:`RenderTooCostly` past ``limits.sms`` bytes."""
    text = _render(_TEXT, "text", template.text, context, _Budget(limits.sms)).strip()
    try:
        length = sms_length(text, max_segments=max_segments)
    except SmsTooLong as exc:
        raise RenderError("text", str(exc)) from None
    return RenderedSms(text=text, length=length)


@dataclass(frozen=True)
class PushTemplate:
    title: str
    body: str
    deep_link: str | None = None
    data: Mapping[str, str] = field(default_factory=dict)
    """Each value is a template too (``{{ product.sku }}``)."""


def render_push(
    template: PushTemplate, context: Mapping[str, Any], *, limits: RenderLimits = DEFAULT_LIMITS
) -> PushContent:
    """Render every part of ``template``; :class:`RenderError` for a template that does not
    render or content over a push notification's limits (the part is ``push``);
    :class:`RenderTooCostly` past ``limits.push`` bytes, every part together."""
    budget = _Budget(limits.push)
    title = " ".join(_render(_TEXT, "title", template.title, context, budget).split())
    body = _render(_TEXT, "body", template.body, context, budget).strip()
    link = None
    if template.deep_link is not None:
        link = _render(_TEXT, "deep_link", template.deep_link, context, budget).strip()
    data = {
        key: _render(_TEXT, f"data.{key}", value, context, budget)
        for key, value in template.data.items()
    }
    try:
        return PushContent(title=title, body=body, deep_link=link, data=data)
    except PushContentError as exc:
        raise RenderError("push", str(exc)) from None


AnyTemplate = EmailTemplate | SmsTemplate | PushTemplate
RenderedMessage = RenderedEmail | RenderedSms | PushContent


def render_message(
    template: AnyTemplate,
    context: Mapping[str, Any],
    *,
    limits: RenderLimits = DEFAULT_LIMITS,
    max_segments: int | None = None,
) -> RenderedMessage:
    """``template`` rendered on its channel (``max_segments``: an SMS's); see each channel's."""
    if isinstance(template, EmailTemplate):
        return render_email(template, context, limits=limits)
    if isinstance(template, SmsTemplate):
        return render_sms(template, context, max_segments=max_segments, limits=limits)
    return render_push(template, context, limits=limits)
