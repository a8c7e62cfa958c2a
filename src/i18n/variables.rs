//! Which variables (`{ $phone }`) a Fluent message uses, read from the AST.
//!
//! `madoguchi check` compares these between locales and against the
//! arguments a flow gives each message, so a translation that forgets or
//! invents a variable is caught before the service starts.

use std::collections::BTreeSet;

use fluent_syntax::ast;

/// Collects the variable names used anywhere in a message (value and
/// attributes, inside select expressions too).
pub fn message_variables(message: &ast::Message<&str>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    if let Some(pattern) = &message.value {
        pattern_variables(pattern, &mut names);
    }
    for attribute in &message.attributes {
        pattern_variables(&attribute.value, &mut names);
    }
    names
}

fn pattern_variables(pattern: &ast::Pattern<&str>, names: &mut BTreeSet<String>) {
    for element in &pattern.elements {
        if let ast::PatternElement::Placeable { expression } = element {
            expression_variables(expression, names);
        }
    }
}

fn expression_variables(expression: &ast::Expression<&str>, names: &mut BTreeSet<String>) {
    match expression {
        ast::Expression::Inline(inline) => inline_variables(inline, names),
        ast::Expression::Select { selector, variants } => {
            inline_variables(selector, names);
            for variant in variants {
                pattern_variables(&variant.value, names);
            }
        }
    }
}

fn inline_variables(inline: &ast::InlineExpression<&str>, names: &mut BTreeSet<String>) {
    match inline {
        ast::InlineExpression::VariableReference { id } => {
            names.insert(id.name.to_string());
        }
        ast::InlineExpression::FunctionReference { arguments, .. } => {
            for positional in &arguments.positional {
                inline_variables(positional, names);
            }
            for named in &arguments.named {
                inline_variables(&named.value, names);
            }
        }
        ast::InlineExpression::TermReference {
            arguments: Some(arguments),
            ..
        } => {
            for named in &arguments.named {
                inline_variables(&named.value, names);
            }
        }
        ast::InlineExpression::Placeable { expression } => expression_variables(expression, names),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_variables_in_values_selects_and_attributes() {
        let source = "hello = { $name } さん\n    .title = { $title }\nsel = { $n ->\n    [one] { $a }\n   *[other] { $b }\n}\n";
        let resource = fluent_syntax::parser::parse(source).unwrap_or_else(|(r, _)| r);
        let mut found = Vec::new();
        for entry in &resource.body {
            if let ast::Entry::Message(m) = entry {
                found.push((m.id.name, message_variables(m)));
            }
        }
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(found[0], ("hello", names(&["name", "title"])));
        assert_eq!(found[1], ("sel", names(&["a", "b", "n"])));
    }
}
