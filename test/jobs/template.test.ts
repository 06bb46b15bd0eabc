import { describe, expect, it } from 'vitest';
import { DomainError } from '../../src/errors.ts';
import { compileTemplate, type RecipientVars, type TemplateSource } from '../../src/jobs/template.ts';

const vars: RecipientVars = {
  email: 'alice@example.com',
  subscriber_id: '0190a0d4-0000-7000-8000-000000000001',
  preferences: { first_name: 'Alice', topics: ['rust', 'postgres'] },
  unsubscribe_url: 'https://mail.example.test/u/abc.def',
};

function templateError(source: TemplateSource): DomainError {
  try {
    compileTemplate(source);
  } catch (err) {
    expect(err).toBeInstanceOf(DomainError);
    expect((err as DomainError).kind).toBe('invalid');
    expect((err as DomainError).code).toBe('template_error');
    return err as DomainError;
  }
  throw new Error('expected a template_error');
}

describe('compileTemplate', () => {
  it('renders the recipient variables into subject, html and text', () => {
    const t = compileTemplate({
      subject: 'Hello {{ preferences.first_name | default: "friend" }}',
      html: '<p>Hi {{ preferences.first_name }} ({{ email }})</p>{% for t in preferences.topics %}<li>{{ t | upcase }}</li>{% endfor %}<a href="{{ unsubscribe_url }}">unsubscribe</a>',
      text: 'Hi {{ email }} / {{ subscriber_id }}\nUnsubscribe: {{ unsubscribe_url }}',
    });
    expect(t.render(vars)).toEqual({
      subject: 'Hello Alice',
      html: '<p>Hi Alice (alice@example.com)</p><li>RUST</li><li>POSTGRES</li><a href="https://mail.example.test/u/abc.def">unsubscribe</a>',
      text: 'Hi alice@example.com / 0190a0d4-0000-7000-8000-000000000001\nUnsubscribe: https://mail.example.test/u/abc.def',
    });
    // Compiled once, rendered per recipient with different values.
    expect(t.render({ ...vars, email: 'bob@example.com', preferences: {} }).subject).toBe('Hello friend');
  });

  it('escapes values in HTML (raw opts out) but not in text or subject', () => {
    const t = compileTemplate({ subject: '{{ preferences.name }}', html: '{{ preferences.name }}|{{ preferences.name | raw }}', text: '{{ preferences.name }}' });
    const out = t.render({ ...vars, preferences: { name: '<b>Bo & Co</b>' } });
    expect(out.html).toBe('&lt;b&gt;Bo &amp; Co&lt;/b&gt;|<b>Bo & Co</b>');
    expect(out.text).toBe('<b>Bo & Co</b>');
    expect(out.subject).toBe('<b>Bo & Co</b>');
  });

  it('renders a plain body without Liquid to itself, and leaves absent parts absent', () => {
    const html = '<html><body><p>50% off & more</p></body></html>';
    const out = compileTemplate({ subject: 'Plain subject', html }).render(vars);
    expect(out).toEqual({ subject: 'Plain subject', html });
    expect('text' in out).toBe(false);
  });

  it('folds line breaks a template renders into the subject', () => {
    const out = compileTemplate({ subject: 'A{{ "\n" }}Bcc: x@evil.test{% if true %}\r\n{% endif %}C', text: 'x' }).render(vars);
    expect(out.subject).not.toMatch(/[\r\n]/);
    expect(out.subject).toBe('A Bcc: x@evil.test C');
  });

  it('rejects syntax errors and unknown filters with template_error, naming the part', () => {
    expect(templateError({ subject: 'ok', html: '<p>{% if %}</p>' }).message).toMatch(/template html/);
    expect(templateError({ subject: '{{ email | no_such_filter }}' }).message).toMatch(/no_such_filter/);
    templateError({ subject: 'ok', text: '{% for x in y %}unclosed' });
    templateError({ subject: 'ok', text: '{{ email ' });
  });

  it('never reads files: include, render and layout fail at compile time', () => {
    for (const tag of ['{% include "/etc/passwd" %}', '{% render "../../package.json" %}', '{% layout "x" %}body']) {
      const err = templateError({ subject: 'x', html: tag });
      expect(err.message).not.toMatch(/root:|send-engine/);
    }
  });

  it('gives no prototype access (ownPropertyOnly)', () => {
    const t = compileTemplate({
      subject: 's',
      text: '[{{ email.constructor }}][{{ preferences.constructor.name }}][{{ preferences.__proto__ }}][{{ preferences.toString }}][{{ preferences.hasOwnProperty }}][{{ email.constructor.constructor }}]',
    });
    expect(t.render(vars).text).toBe('[][][][][][]');
  });

  it('stops runaway templates at compile time: memory and time limits', () => {
    expect(templateError({ subject: '{% for i in (1..100000000) %}{{ i }}{% endfor %}' }).message).toMatch(/limit/);
    expect(
      templateError({ subject: '{% assign s = "xxxxxxxxxx" %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}{{ s | size }}' }).message,
    ).toMatch(/memory/);
    const started = Date.now();
    expect(templateError({ subject: '{% for i in (1..5000) %}{% for j in (1..5000) %}{{ j }}{% endfor %}{% endfor %}' }).message).toMatch(/limit/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('refuses sources over the parse limit', () => {
    templateError({ subject: 's', html: `{{ email }}${'x'.repeat(2_100_000)}` });
  });

  it('rejects parts that are not strings', () => {
    templateError({ subject: 's', html: 42 as unknown as string });
    templateError({ subject: undefined as unknown as string, text: 'x' });
  });
});
