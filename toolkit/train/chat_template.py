"""The builtin model's chat template.

The assistant's content *and* its end-of-turn token sit inside {% generation %} markers, so TRL's
assistant-only loss trains the model to stop (TRL warns when the end token falls outside).
Tool calling: the tools' definitions open the conversation as a system turn, the assistant's calls
are JSON inside <tool_call> tags within its generation (trained on), and a tool's result comes back
as a user turn inside <tool_response> tags (not trained on), as Qwen-style templates do; no new
control tokens, so plain conversations render exactly as before.
"""

BOS, END, PAD = "<|bos|>", "<|end|>", "<|pad|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = (BOS, END, PAD, *ROLE_TOKENS)

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% if tools %}"
    "{{ '<|system|>\nYou may call these tools, one <tool_call>{\"name\": ..., \"arguments\": {...}}</tool_call> each:\n' }}"
    "{% for tool in tools %}{{ (tool.function if tool.function is defined else tool) | tojson + '\n' }}{% endfor %}"
    "{{ '<|end|>\n' }}"
    "{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|assistant|>\n' }}{% generation %}{{ message['content'] or '' }}"
    "{% for call in message.tool_calls or [] %}"
    "{{ '<tool_call>' + {'name': call.function.name, 'arguments': call.function.arguments} | tojson + '</tool_call>' }}"
    "{% endfor %}"
    "{{ '<|end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% elif message['role'] == 'tool' %}"
    "{{ '<|user|>\n<tool_response>' + message['content'] + '</tool_response><|end|>\n' }}"
    "{% else %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)
